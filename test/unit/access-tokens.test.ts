import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  accessTokenConfigProblems,
  accessTokenVerifier,
  namespaceAllowed,
  publicKeyAlgorithms,
  requestToken,
  type AccessTokenConfig,
} from "../../src/trust/access-tokens.ts";

const NONE: AccessTokenConfig = { authJwtSecret: "", authJwtPublicKey: "", authJwksUrl: "", authJwtAudience: "", authJwtIssuer: "" };
const SECRET = "a shared secret of the identity provider";
/** The tests' clock: a fixed instant, in ms. */
const NOW = 1_700_000_000_000;
const seconds = (ms: number): number => Math.floor(ms / 1_000);

function hs256(claims: Record<string, unknown>, secret = SECRET): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).sign(new TextEncoder().encode(secret));
}

describe("access token verifier", () => {
  it("is absent when no JWT option is set", () => {
    expect(accessTokenVerifier(NONE)).toBeUndefined();
  });

  it("HS256: accepts a token of the secret and reads sub, namespaces and exp", async () => {
    const verifier = accessTokenVerifier({ ...NONE, authJwtSecret: SECRET }, () => NOW);
    const token = await hs256({ sub: "a".repeat(64), namespaces: ["lobby", "game-*"], exp: seconds(NOW) + 60 });
    expect(await verifier?.verify(token)).toEqual({
      ok: true,
      claims: { subject: "a".repeat(64), namespaces: ["lobby", "game-*"], expiresAt: (seconds(NOW) + 60) * 1_000 },
    });
  });

  it("a token without claims grants everything, forever", async () => {
    const verifier = accessTokenVerifier({ ...NONE, authJwtSecret: SECRET }, () => NOW);
    expect(await verifier?.verify(await hs256({}))).toEqual({ ok: true, claims: { subject: undefined, namespaces: undefined, expiresAt: undefined } });
  });

  it("refuses a missing token, another secret's, an expired one, garbage, and one too long, with 401", async () => {
    const verifier = accessTokenVerifier({ ...NONE, authJwtSecret: SECRET }, () => NOW);
    for (const token of [undefined, "", await hs256({}, "another secret"), await hs256({ exp: seconds(NOW) - 1 }), "not.a.jwt", "x".repeat(9_000)]) {
      expect(await verifier?.verify(token)).toMatchObject({ ok: false, status: 401 });
    }
    expect(await verifier?.verify(await hs256({ exp: seconds(NOW) - 1 }))).toMatchObject({ reason: "access token expired" });
  });

  it("enforces exp by the injected clock", async () => {
    let now = NOW;
    const verifier = accessTokenVerifier({ ...NONE, authJwtSecret: SECRET }, () => now);
    const token = await hs256({ exp: seconds(NOW) + 10 });
    expect((await verifier?.verify(token))?.ok).toBe(true);
    now += 11_000;
    expect(await verifier?.verify(token)).toMatchObject({ ok: false, status: 401, reason: "access token expired" });
  });

  it("checks the audience and the issuer when configured", async () => {
    const verifier = accessTokenVerifier({ ...NONE, authJwtSecret: SECRET, authJwtAudience: "peer-server", authJwtIssuer: "https://id.example" }, () => NOW);
    expect((await verifier?.verify(await hs256({ aud: ["other", "peer-server"], iss: "https://id.example" })))?.ok).toBe(true);
    expect(await verifier?.verify(await hs256({ aud: "other", iss: "https://id.example" }))).toMatchObject({ ok: false, status: 401, reason: "access token aud claim invalid" });
    expect(await verifier?.verify(await hs256({ aud: "peer-server", iss: "https://evil.example" }))).toMatchObject({ ok: false, status: 401 });
    expect(await verifier?.verify(await hs256({ iss: "https://id.example" }))).toMatchObject({ ok: false, status: 401 });
  });

  it("refuses a namespaces claim that is not a list of strings", async () => {
    const verifier = accessTokenVerifier({ ...NONE, authJwtSecret: SECRET }, () => NOW);
    for (const namespaces of ["lobby", [1], { lobby: true }]) {
      expect(await verifier?.verify(await hs256({ namespaces }))).toMatchObject({ ok: false, status: 401 });
    }
  });

  it.each([
    ["ES256", "ES256"],
    ["EdDSA", "Ed25519"],
    ["RS256", "RS256"],
  ] as const)("a public key (%s) verifies its own tokens only, and no HS256 token signed with the PEM as secret", async (alg, keyAlg) => {
    const { publicKey, privateKey } = await generateKeyPair(keyAlg, { extractable: true });
    const pem = await exportSPKI(publicKey);
    const verifier = accessTokenVerifier({ ...NONE, authJwtPublicKey: pem }, () => NOW);
    const sign = (key: CryptoKey, claims: Record<string, unknown> = { sub: "peer" }): Promise<string> => new SignJWT(claims).setProtectedHeader({ alg }).sign(key);
    expect(await verifier?.verify(await sign(privateKey))).toMatchObject({ ok: true, claims: { subject: "peer" } });
    const other = await generateKeyPair(keyAlg);
    expect(await verifier?.verify(await sign(other.privateKey))).toMatchObject({ ok: false, status: 401 });
    // The classic confusion: the public key's text used as an HMAC secret.
    expect(await verifier?.verify(await hs256({ sub: "peer" }, pem))).toMatchObject({ ok: false, status: 401 });
  });

  it("reads a PEM whose line breaks are written as \\n (an environment variable's)", async () => {
    const { publicKey, privateKey } = await generateKeyPair("ES256", { extractable: true });
    const pem = (await exportSPKI(publicKey)).replace(/\n/g, "\\n");
    const verifier = accessTokenVerifier({ ...NONE, authJwtPublicKey: pem }, () => NOW);
    expect((await verifier?.verify(await new SignJWT({}).setProtectedHeader({ alg: "ES256" }).sign(privateKey)))?.ok).toBe(true);
  });

  describe("a JWKS", () => {
    let server: Server;
    let url: string;
    let keys: Awaited<ReturnType<typeof generateKeyPair>>;
    let served = true;
    beforeAll(async () => {
      keys = await generateKeyPair("ES256", { extractable: true });
      const jwk = { ...(await exportJWK(keys.publicKey)), kid: "k1", alg: "ES256", use: "sig" };
      server = createServer((_request, response) => {
        if (!served) {
          response.writeHead(500).end();
          return;
        }
        response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ keys: [jwk] }));
      });
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;
    });
    afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

    it("verifies a token signed with one of its keys; another key's is 401; unreachable keys are 503", async () => {
      const verifier = accessTokenVerifier({ ...NONE, authJwksUrl: url }, () => NOW);
      const token = await new SignJWT({ sub: "peer" }).setProtectedHeader({ alg: "ES256", kid: "k1" }).sign(keys.privateKey);
      expect(await verifier?.verify(token)).toMatchObject({ ok: true, claims: { subject: "peer" } });
      const stranger = await generateKeyPair("ES256");
      expect(await verifier?.verify(await new SignJWT({}).setProtectedHeader({ alg: "ES256", kid: "k1" }).sign(stranger.privateKey))).toMatchObject({ ok: false, status: 401 });
      served = false;
      const fresh = accessTokenVerifier({ ...NONE, authJwksUrl: url }, () => NOW);
      expect(await fresh?.verify(token)).toMatchObject({ ok: false, status: 503 });
      served = true;
    });
  });
});

describe("access token configuration", () => {
  it("names an unusable public key and a JWKS URL that is not http(s)", async () => {
    expect(accessTokenConfigProblems({ ...NONE, authJwtPublicKey: "not a key" })).toEqual([expect.stringMatching(/^auth_jwt_public_key: /)]);
    expect(accessTokenConfigProblems({ ...NONE, authJwksUrl: "ftp://keys.example/jwks" })).toEqual([expect.stringMatching(/^auth_jwks_url: /)]);
    expect(accessTokenConfigProblems({ ...NONE, authJwksUrl: "https://keys.example/jwks" })).toEqual([]);
    const p384 = await generateKeyPair("ES384", { extractable: true });
    expect(publicKeyAlgorithms(await exportSPKI(p384.publicKey))).toEqual({ problem: expect.stringContaining("P-256") });
  });
});

describe("namespace claims", () => {
  it("without the claim every namespace is granted; with it, the listed ones and prefixes before a trailing *", () => {
    expect(namespaceAllowed(undefined, "anything")).toBe(true);
    const claims = { subject: undefined, expiresAt: undefined, namespaces: ["lobby", "game-*"] };
    expect(namespaceAllowed(claims, "lobby")).toBe(true);
    expect(namespaceAllowed(claims, "lobby2")).toBe(false);
    expect(namespaceAllowed(claims, "game-")).toBe(true);
    expect(namespaceAllowed(claims, "game-42")).toBe(true);
    expect(namespaceAllowed(claims, "gam")).toBe(false);
    expect(namespaceAllowed({ ...claims, namespaces: [] }, "lobby")).toBe(false);
    expect(namespaceAllowed({ ...claims, namespaces: ["*"] }, "lobby")).toBe(true);
  });
});

describe("the token a request presents", () => {
  it("is the Bearer header's, else the token query parameter", () => {
    expect(requestToken("/ws?token=q", "Bearer h")).toBe("h");
    expect(requestToken("/ws?token=q", undefined)).toBe("q");
    expect(requestToken("/ws?x=1&token=a%2Bb", "Basic abc")).toBe("a+b");
    expect(requestToken("/ws", undefined)).toBeUndefined();
    expect(requestToken("/ws?tokens=q", "bearer   h2 ")).toBe("h2");
  });
});
