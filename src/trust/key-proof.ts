import { createPublicKey, verify, type KeyObject } from "node:crypto";

/**
 * Proof of key possession, the pure crypto: reading a `public_key` string as a public key, and
 * checking a register's signature over its connection's nonce. Everything is node:crypto; nothing
 * here keeps state or knows a connection (the nonces live with the sessions, core/challenges.ts).
 *
 * Accepted keys, each as base64 or base64url of:
 * - an uncompressed P-256 point (65 bytes, 0x04 || x || y: WebCrypto's `exportKey("raw")`);
 * - a raw Ed25519 key (32 bytes);
 * - an SPKI DER key of P-256 or Ed25519 (`exportKey("spki")`).
 * Accepted signatures: ECDSA P-256 with SHA-256, in IEEE P1363 form (64 bytes, WebCrypto's) or
 * DER; Ed25519.
 */

/** What a client signs: these bytes, then the nonce, as UTF-8. */
export const REGISTER_PROOF_PREFIX = "peer-server-register:";

/** The bytes a register's signature covers for `nonce`. */
export const registerProofMessage = (nonce: string): Buffer => Buffer.from(REGISTER_PROOF_PREFIX + nonce, "utf8");

const RAW_P256_LENGTH = 65;
const RAW_P256_PREFIX = 0x04;
const RAW_ED25519_LENGTH = 32;
const P1363_P256_LENGTH = 64;
/** Neither an SPKI key of the accepted kinds (P-256: 91 bytes, Ed25519: 44) nor a raw one is longer: nothing longer is parsed. */
const MAX_KEY_BYTES = 128;

/** Standard and URL-safe alphabets, padding optional. Buffer's own decoder skips what it cannot read, so the text is checked first. */
const BASE64 = /^[A-Za-z0-9+/_-]+={0,2}$/;

/** The bytes of base64 or base64url text; undefined when it is not such text. */
export function decodeBase64(text: string): Buffer | undefined {
  return BASE64.test(text) ? Buffer.from(text, "base64") : undefined;
}

/**
 * Reads a `public_key` string as a P-256 or Ed25519 public key; undefined for anything else (any
 * other string, another curve, RSA, a point that is not on the curve). Never throws.
 */
export function parsePublicKey(publicKey: string): KeyObject | undefined {
  // Four base64 characters per three bytes: a longer text cannot be an accepted key.
  if (publicKey.length > Math.ceil(MAX_KEY_BYTES / 3) * 4) return undefined;
  const bytes = decodeBase64(publicKey);
  if (bytes === undefined) return undefined;
  try {
    if (bytes.length === RAW_P256_LENGTH && bytes[0] === RAW_P256_PREFIX) {
      const x = bytes.subarray(1, 33).toString("base64url");
      const y = bytes.subarray(33).toString("base64url");
      // The JWK import checks that the point is on the curve.
      return createPublicKey({ key: { kty: "EC", crv: "P-256", x, y }, format: "jwk" });
    }
    if (bytes.length === RAW_ED25519_LENGTH) {
      return createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: bytes.toString("base64url") }, format: "jwk" });
    }
    const key = createPublicKey({ key: bytes, format: "der", type: "spki" });
    return isAccepted(key) ? key : undefined;
  } catch {
    // Not a key OpenSSL can read: an identifier like any other, which simply cannot be proven.
    return undefined;
  }
}

function isAccepted(key: KeyObject): boolean {
  if (key.asymmetricKeyType === "ed25519") return true;
  return key.asymmetricKeyType === "ec" && key.asymmetricKeyDetails?.namedCurve === "prime256v1";
}

/**
 * True when `signature` (base64 or base64url) is `key`'s signature over the register message for
 * `nonce`: Ed25519, or ECDSA P-256/SHA-256 in P1363 or DER form. Never throws.
 */
export function verifyRegisterProof(key: KeyObject, nonce: string, signature: string): boolean {
  const bytes = decodeBase64(signature);
  if (bytes === undefined) return false;
  const message = registerProofMessage(nonce);
  try {
    if (key.asymmetricKeyType === "ed25519") return verify(null, message, key, bytes);
    // A P1363 signature is exactly 64 bytes; a DER one almost never is, so 64 tries P1363 first.
    if (bytes.length === P1363_P256_LENGTH && verify("sha256", message, { key, dsaEncoding: "ieee-p1363" }, bytes)) return true;
    return verify("sha256", message, { key, dsaEncoding: "der" }, bytes);
  } catch {
    return false;
  }
}
