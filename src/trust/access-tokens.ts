import { createPublicKey } from "node:crypto";
import { createRemoteJWKSet, errors, importSPKI, jwtVerify, type CryptoKey, type JWTPayload, type JWTVerifyGetKey, type JWTVerifyOptions } from "jose";
import type { Config } from "../config/load.ts";

/**
 * Access tokens: every connection presents a JWT that the deployment's identity provider signed
 * (`auth_jwt_secret` HS256, `auth_jwt_public_key` RS256/ES256/EdDSA, or a key of `auth_jwks_url`),
 * verified here with jose. Pure: the verifier is built from the configuration and turns a token
 * into its claims or a reason; what a connection may then do with them is the core's
 * (core/access.ts).
 */

/** What a verified token grants, from its claims. */
export interface AccessClaims {
  /** `sub`: the only fingerprint the connection may register; undefined: any. */
  readonly subject: string | undefined;
  /** `namespaces`: the namespaces it may join and match in (a trailing `*` matches a prefix); undefined: any. */
  readonly namespaces: readonly string[] | undefined;
  /** `exp`, in ms since the epoch: the connection is closed then (4003); undefined: never. */
  readonly expiresAt: number | undefined;
}

/** A token's verdict: its claims, or the HTTP-like status and reason it is refused with. */
export type TokenVerdict =
  | { readonly ok: true; readonly claims: AccessClaims }
  /** 401: no token, or one that does not verify; 503: the JWKS could not be fetched. */
  | { readonly ok: false; readonly status: 401 | 503; readonly reason: string };

export interface AccessTokenVerifier {
  /** Verifies `token` (undefined: none was presented). Never rejects. */
  verify(token: string | undefined): Promise<TokenVerdict>;
}

/** The JWT options of the configuration. */
export type AccessTokenConfig = Pick<Config, "authJwtSecret" | "authJwtPublicKey" | "authJwksUrl" | "authJwtAudience" | "authJwtIssuer">;

/** Longest token read at all: a URL or header beyond this is no token we issued. */
const MAX_TOKEN_LENGTH = 8_192;
/** The asymmetric algorithms accepted, from a public key or a JWKS. */
const ASYMMETRIC = ["RS256", "ES256", "EdDSA", "Ed25519"] as const;
/** How long a JWKS fetch may take. */
const JWKS_TIMEOUT_MS = 5_000;

/** True when one of the JWT key options is set: every connection then needs a token. */
export const accessTokensConfigured = (config: AccessTokenConfig): boolean =>
  config.authJwtSecret !== "" || config.authJwtPublicKey !== "" || config.authJwksUrl !== "";

/**
 * The PEM of `auth_jwt_public_key`: an environment variable often carries it on one line with
 * `\n` written out, which is read as line breaks.
 */
const pemOf = (text: string): string => text.replace(/\\n/g, "\n").trim();

/** The algorithms a PEM public key verifies (by its type), or the problem with it. Also checks the configuration at load. */
export function publicKeyAlgorithms(pem: string): { algorithms: readonly string[] } | { problem: string } {
  let key;
  try {
    key = createPublicKey(pemOf(pem));
  } catch {
    return { problem: "must be a PEM public key (-----BEGIN PUBLIC KEY-----)" };
  }
  const type = key.asymmetricKeyType;
  if (type === "rsa") return { algorithms: ["RS256"] };
  if (type === "ed25519") return { algorithms: ["EdDSA", "Ed25519"] };
  if (type === "ec" && key.asymmetricKeyDetails?.namedCurve === "prime256v1") return { algorithms: ["ES256"] };
  return { problem: "must be an RSA, P-256 or Ed25519 public key" };
}

/** What is wrong with the configuration's JWT options, each naming its key; empty when nothing is. */
export function accessTokenConfigProblems(config: AccessTokenConfig): string[] {
  const problems: string[] = [];
  if (config.authJwtPublicKey !== "") {
    const accepted = publicKeyAlgorithms(config.authJwtPublicKey);
    if ("problem" in accepted) problems.push(`auth_jwt_public_key: ${accepted.problem}`);
  }
  if (config.authJwksUrl !== "" && !/^https?:$/.test(URL.canParse(config.authJwksUrl) ? new URL(config.authJwksUrl).protocol : "")) {
    problems.push("auth_jwks_url: must be an http:// or https:// URL");
  }
  return problems;
}

/**
 * The verifier of the configured key, or undefined when no JWT option is set (no token needed).
 * Throws when the public key is unusable (the configuration loader checks it first).
 *
 * @param now ms since the epoch, for `exp` and `nbf` (default Date.now)
 */
export function accessTokenVerifier(config: AccessTokenConfig, now: () => number = Date.now): AccessTokenVerifier | undefined {
  if (!accessTokensConfigured(config)) return undefined;
  const claimOptions: JWTVerifyOptions = {
    ...(config.authJwtAudience === "" ? {} : { audience: config.authJwtAudience }),
    ...(config.authJwtIssuer === "" ? {} : { issuer: config.authJwtIssuer }),
  };
  let verify: (token: string, options: JWTVerifyOptions) => Promise<JWTPayload>;
  if (config.authJwtSecret !== "") {
    const secret = new TextEncoder().encode(config.authJwtSecret);
    verify = async (token, options) => (await jwtVerify(token, secret, { ...options, algorithms: ["HS256"] })).payload;
  } else if (config.authJwtPublicKey !== "") {
    const pem = pemOf(config.authJwtPublicKey);
    const accepted = publicKeyAlgorithms(pem);
    if ("problem" in accepted) throw new Error(`auth_jwt_public_key ${accepted.problem}`);
    // WebCrypto keys are bound to one algorithm: one import per algorithm the tokens name, kept.
    const imported = new Map<string, Promise<CryptoKey>>();
    const key: JWTVerifyGetKey = (header) => {
      const alg = header.alg ?? "";
      let found = imported.get(alg);
      if (found === undefined) imported.set(alg, (found = importSPKI(pem, alg)));
      return found;
    };
    verify = async (token, options) => (await jwtVerify(token, key, { ...options, algorithms: [...accepted.algorithms] })).payload;
  } else {
    const keys = createRemoteJWKSet(new URL(config.authJwksUrl), { timeoutDuration: JWKS_TIMEOUT_MS });
    verify = async (token, options) => (await jwtVerify(token, keys, { ...options, algorithms: [...ASYMMETRIC] })).payload;
  }
  return {
    async verify(token) {
      if (token === undefined || token === "") return refused(401, "access token required");
      if (token.length > MAX_TOKEN_LENGTH) return refused(401, "access token too long");
      let payload: JWTPayload;
      try {
        payload = await verify(token, { ...claimOptions, currentDate: new Date(now()) });
      } catch (error) {
        return refusal(error);
      }
      return claimsOf(payload);
    },
  };
}

const refused = (status: 401 | 503, reason: string): TokenVerdict => ({ ok: false, status, reason });

/** The verdict of a failed verification: the token's fault (401), or the key source's (503). */
function refusal(error: unknown): TokenVerdict {
  if (error instanceof errors.JWTExpired) return refused(401, "access token expired");
  if (error instanceof errors.JWTClaimValidationFailed) return refused(401, `access token ${error.claim} claim invalid`);
  // jose's generic error (no subclass) is the JWKS answer's: not 200, or no JSON.
  if (error instanceof errors.JWKSTimeout || error instanceof errors.JWKSInvalid || (error instanceof errors.JOSEError && error.code === "ERR_JOSE_GENERIC")) {
    return refused(503, "the access token keys could not be fetched");
  }
  if (error instanceof errors.JOSEError) return refused(401, "invalid access token");
  // Not jose's verdict on the token: the JWKS fetch failed (connection refused, HTTP error).
  return refused(503, "the access token keys could not be fetched");
}

/** The claims the server reads, checked for shape (a token of the right signer with malformed claims is still refused). */
function claimsOf(payload: JWTPayload): TokenVerdict {
  const { sub, exp } = payload;
  const namespaces: unknown = payload["namespaces"];
  if (namespaces !== undefined && !(Array.isArray(namespaces) && namespaces.every((name) => typeof name === "string"))) {
    return refused(401, "access token namespaces claim must be an array of strings");
  }
  return {
    ok: true,
    claims: {
      subject: typeof sub === "string" ? sub : undefined,
      namespaces: namespaces as string[] | undefined,
      expiresAt: typeof exp === "number" ? exp * 1_000 : undefined,
    },
  };
}

/** True when the claims let the connection into namespace `name`: listed, or under a listed `prefix*`. */
export function namespaceAllowed(claims: AccessClaims | undefined, name: string): boolean {
  const patterns = claims?.namespaces;
  if (patterns === undefined) return true;
  for (const pattern of patterns) {
    if (pattern.endsWith("*") ? name.startsWith(pattern.slice(0, -1)) : name === pattern) return true;
  }
  return false;
}

const BEARER = /^Bearer[ \t]+(\S+)\s*$/i;

/**
 * The token a request presents: `Authorization: Bearer <token>`, else the URL's `token` query
 * parameter (browsers cannot set headers on a WebSocket); undefined when neither is there.
 */
export function requestToken(url: string | undefined, authorization: string | undefined): string | undefined {
  const bearer = authorization === undefined ? undefined : BEARER.exec(authorization)?.[1];
  if (bearer !== undefined) return bearer;
  const mark = url?.indexOf("?") ?? -1;
  if (url === undefined || mark < 0) return undefined;
  return new URLSearchParams(url.slice(mark + 1)).get("token") ?? undefined;
}
