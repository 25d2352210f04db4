import { createHash, timingSafeEqual } from "node:crypto";

/** A digest to compare: the same length whatever was sent, so the comparison takes the same time. */
const digest = (text: string): Buffer => createHash("sha256").update(text).digest();

/**
 * The check of an `Authorization` header against a configured token: true for `Bearer <token>`
 * (the scheme in any case), the token compared in constant time whatever its length. Undefined
 * when no token is configured (""): every request passes.
 */
export function bearerCheck(token: string): ((authorization: string | undefined) => boolean) | undefined {
  if (token === "") return undefined;
  const expected = digest(token);
  return (authorization) => {
    if (authorization === undefined) return false;
    const match = /^bearer +(\S+) *$/i.exec(authorization);
    return match !== null && timingSafeEqual(digest(match[1] as string), expected);
  };
}
