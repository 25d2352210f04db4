import { deleteKeyPair, loadKeyPair, saveKeyPair } from "./key-store.ts";
import { PROOF_PREFIX } from "./protocol.ts";

const P256 = { name: "ECDSA", namedCurve: "P-256" } as const;
const ECDSA_SHA256 = { name: "ECDSA", hash: "SHA-256" } as const;
const TAB_KEY = "peer-server:tab";

function subtle(): SubtleCrypto {
  const value = (globalThis as { crypto?: Crypto }).crypto?.subtle;
  // Browsers give WebCrypto to secure contexts only (https, or http on localhost / 127.0.0.1).
  if (value === undefined) throw new Error("WebCrypto (crypto.subtle) is not available: serve the page over https or from localhost");
  return value;
}

/** Standard base64 of bytes. */
export function base64(bytes: Uint8Array): string {
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text);
}

function hex(bytes: ArrayBuffer): string {
  return [...new Uint8Array(bytes)].map((byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** Where `Identity.stored` keeps a key: shared by every tab of the browser profile, or one per tab. */
export type StorageScope = "browser" | "tab";

/**
 * A peer's identity: an ECDSA P-256 key pair made with WebCrypto. The public key, as base64 of its
 * raw 65-byte point, is what the client registers (its SHA-256 is the fingerprint); the private
 * key signs the server's challenge (proof of key possession) and, when this class makes it, is
 * non-extractable: no script can read it, not even this one.
 */
export class Identity {
  private constructor(
    /** The `public_key` string: base64 of the raw (uncompressed, 65-byte) P-256 point. */
    readonly publicKey: string,
    /** Lowercase hex SHA-256 of `publicKey`, as the server computes it. */
    readonly fingerprint: string,
    /** The key pair, for the caller to keep (e.g. in its own storage). */
    readonly keyPair: CryptoKeyPair,
  ) {}

  /** A fresh identity held in memory only; the private key is non-extractable. */
  static async generate(): Promise<Identity> {
    return Identity.fromKeyPair((await subtle().generateKey(P256, false, ["sign", "verify"])) as CryptoKeyPair);
  }

  /** The identity of an existing ECDSA P-256 key pair (the public key must be exportable, as public keys always are). */
  static async fromKeyPair(keyPair: CryptoKeyPair): Promise<Identity> {
    const publicKey = base64(new Uint8Array(await subtle().exportKey("raw", keyPair.publicKey)));
    const fingerprint = hex(await subtle().digest("SHA-256", new TextEncoder().encode(publicKey)));
    return new Identity(publicKey, fingerprint, keyPair);
  }

  /**
   * The identity stored in this browser's IndexedDB under `name`, made and stored on first use.
   * `scope: "tab"` keeps one per tab: the name gets a random suffix remembered in sessionStorage,
   * which each tab has to itself (so two tabs of one browser are two peers, and a reload keeps its own).
   */
  static async stored(name = "default", options: { scope?: StorageScope } = {}): Promise<Identity> {
    const key = options.scope === "tab" ? `${name}:${tabId()}` : name;
    const existing = await loadKeyPair(key);
    if (existing !== undefined) return Identity.fromKeyPair(existing);
    const pair = (await subtle().generateKey(P256, false, ["sign", "verify"])) as CryptoKeyPair;
    await saveKeyPair(key, pair);
    return Identity.fromKeyPair(pair);
  }

  /** Deletes the identity stored under `name` (and scope), so that the next `stored` makes a new one. */
  static async forget(name = "default", options: { scope?: StorageScope } = {}): Promise<void> {
    await deleteKeyPair(options.scope === "tab" ? `${name}:${tabId()}` : name);
  }

  /** Base64 of the ECDSA P-256/SHA-256 signature (IEEE P1363, 64 bytes) of `text` as UTF-8. */
  async sign(text: string): Promise<string> {
    return base64(new Uint8Array(await subtle().sign(ECDSA_SHA256, this.keyPair.privateKey, new TextEncoder().encode(text))));
  }

  /** The `signature` of a register that answers the server's challenge `nonce`. */
  proof(nonce: string): Promise<string> {
    return this.sign(PROOF_PREFIX + nonce);
  }
}

function tabId(): string {
  const storage = (globalThis as { sessionStorage?: Storage }).sessionStorage;
  if (storage === undefined) throw new Error("sessionStorage is not available: a per-tab identity needs a browser tab");
  let id = storage.getItem(TAB_KEY);
  if (id === null) {
    id = (globalThis.crypto as Crypto).randomUUID();
    storage.setItem(TAB_KEY, id);
  }
  return id;
}
