import { generateKeyPairSync, randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { parsePublicKey, registerProofMessage, verifyRegisterProof } from "../../src/trust/key-proof.ts";
import { KEY_KINDS, makeKey, PROOF_PREFIX } from "../helpers/key-proof.ts";

const toUrl = (base64: string): string => Buffer.from(base64, "base64").toString("base64url");
const nonce = (): string => randomBytes(32).toString("base64url");

describe("trust/key-proof: the register message", () => {
  it("is the prefix then the nonce, as UTF-8", () => {
    expect(registerProofMessage("abc").toString("utf8")).toBe(`${PROOF_PREFIX}abc`);
  });
});

describe.each(KEY_KINDS)("trust/key-proof with %s", (kind) => {
  it("reads the public key and verifies its signature over the nonce", async () => {
    const key = await makeKey(kind);
    const parsed = parsePublicKey(key.publicKey);
    expect(parsed?.asymmetricKeyType).toBe(kind.startsWith("p256") ? "ec" : "ed25519");
    const challenge = nonce();
    expect(verifyRegisterProof(parsed!, challenge, await key.sign(challenge))).toBe(true);
  });

  it("takes base64url for the key and the signature alike", async () => {
    const key = await makeKey(kind);
    const challenge = nonce();
    const parsed = parsePublicKey(toUrl(key.publicKey));
    expect(parsed).toBeDefined();
    expect(verifyRegisterProof(parsed!, challenge, toUrl(await key.sign(challenge)))).toBe(true);
  });

  it("refuses a signature over another nonce, by another key, tampered, or not base64", async () => {
    const key = await makeKey(kind);
    const parsed = parsePublicKey(key.publicKey)!;
    const challenge = nonce();
    expect(verifyRegisterProof(parsed, challenge, await key.sign(nonce()))).toBe(false);
    expect(verifyRegisterProof(parsed, challenge, await key.signText(challenge))).toBe(false); // no prefix
    expect(verifyRegisterProof(parsed, challenge, await (await makeKey(kind)).sign(challenge))).toBe(false);
    const signature = Buffer.from(await key.sign(challenge), "base64");
    signature[signature.length - 5] = (signature[signature.length - 5] ?? 0) ^ 0x01;
    expect(verifyRegisterProof(parsed, challenge, signature.toString("base64"))).toBe(false);
    expect(verifyRegisterProof(parsed, challenge, "not base64!")).toBe(false);
    expect(verifyRegisterProof(parsed, challenge, "")).toBe(false);
    expect(verifyRegisterProof(parsed, challenge, Buffer.alloc(64).toString("base64"))).toBe(false);
  });
});

describe("trust/key-proof: keys it does not accept", () => {
  it("plain identifiers, other curves, RSA, off-curve points and oversized text read as no key", async () => {
    expect(parsePublicKey("alice-public-key")).toBeUndefined();
    expect(parsePublicKey("not base64 at all!")).toBeUndefined();
    expect(parsePublicKey("")).toBeUndefined();
    const p384 = generateKeyPairSync("ec", { namedCurve: "secp384r1" }).publicKey.export({ type: "spki", format: "der" });
    expect(parsePublicKey(p384.toString("base64"))).toBeUndefined();
    const rsa = generateKeyPairSync("rsa", { modulusLength: 1024 }).publicKey.export({ type: "spki", format: "der" });
    expect(parsePublicKey(rsa.toString("base64"))).toBeUndefined();

    const raw = Buffer.from((await makeKey("p256-raw-p1363")).publicKey, "base64");
    const offCurve = Buffer.from(raw);
    offCurve[64] = (offCurve[64] ?? 0) ^ 0x01;
    expect(parsePublicKey(offCurve.toString("base64"))).toBeUndefined();
    const notUncompressed = Buffer.from(raw);
    notUncompressed[0] = 0x05;
    expect(parsePublicKey(notUncompressed.toString("base64"))).toBeUndefined();
    expect(parsePublicKey(Buffer.alloc(33, 7).toString("base64"))).toBeUndefined();
    expect(parsePublicKey(randomBytes(2_000).toString("base64"))).toBeUndefined();
  });

  it("a signature of the other algorithm never verifies", async () => {
    const ed = await makeKey("ed25519-raw");
    const ec = await makeKey("p256-raw-p1363");
    const challenge = nonce();
    expect(verifyRegisterProof(parsePublicKey(ec.publicKey)!, challenge, await ed.sign(challenge))).toBe(false);
    expect(verifyRegisterProof(parsePublicKey(ed.publicKey)!, challenge, await ec.sign(challenge))).toBe(false);
  });
});
