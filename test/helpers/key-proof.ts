import { KeyObject, sign, webcrypto } from "node:crypto";

/**
 * Key pairs made the way clients make them (WebCrypto's `crypto.subtle`), with the public key in
 * one of the accepted `public_key` forms and a signer in one of the accepted signature forms.
 */

/** What a register proof signs: the prefix, then the nonce. */
export const PROOF_PREFIX = "peer-server-register:";

/** Key form + signature form. */
export type KeyKind = "p256-raw-p1363" | "p256-spki-der" | "ed25519-spki" | "ed25519-raw";
export const KEY_KINDS: readonly KeyKind[] = ["p256-raw-p1363", "p256-spki-der", "ed25519-spki", "ed25519-raw"];

export interface TestKey {
  readonly kind: KeyKind;
  /** The `public_key` string: base64 of the exported public key. */
  readonly publicKey: string;
  /** Signs `text` as UTF-8; base64 of the signature in this kind's form. */
  signText(text: string): Promise<string>;
  /** The `signature` of a register answering `nonce`. */
  sign(nonce: string): Promise<string>;
}

const { subtle } = webcrypto;
const P256 = { name: "ECDSA", namedCurve: "P-256" } as const;
const ECDSA_SHA256 = { name: "ECDSA", hash: "SHA-256" } as const;

export async function makeKey(kind: KeyKind): Promise<TestKey> {
  const p256 = kind.startsWith("p256");
  const pair = (await subtle.generateKey(p256 ? P256 : { name: "Ed25519" }, true, ["sign", "verify"])) as webcrypto.CryptoKeyPair;
  const format = kind === "p256-raw-p1363" || kind === "ed25519-raw" ? "raw" : "spki";
  const publicKey = Buffer.from(await subtle.exportKey(format, pair.publicKey)).toString("base64");
  const signText = async (text: string): Promise<string> => {
    const data = Buffer.from(text, "utf8");
    if (kind === "p256-spki-der") return sign("sha256", data, { key: KeyObject.from(pair.privateKey), dsaEncoding: "der" }).toString("base64");
    const signature = await subtle.sign(p256 ? ECDSA_SHA256 : { name: "Ed25519" }, pair.privateKey, data);
    return Buffer.from(signature).toString("base64");
  };
  return { kind, publicKey, signText, sign: (nonce) => signText(PROOF_PREFIX + nonce) };
}
