import { createHash, timingSafeEqual } from "node:crypto";

/** A digest to compare: equal lengths whatever was sent, so the comparison takes the same time. */
const digest = (text: string): Buffer => createHash("sha256").update(text).digest();

/**
 * The check of a dialect's configured shared token: true when `candidate` is that token, compared
 * in constant time whatever its length. Undefined when no token is configured ("").
 */
export function sharedTokenCheck(token: string): ((candidate: unknown) => boolean) | undefined {
  if (token === "") return undefined;
  const expected = digest(token);
  return (candidate) => typeof candidate === "string" && timingSafeEqual(digest(candidate), expected);
}
