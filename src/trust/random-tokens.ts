import { randomFillSync } from "node:crypto";

/**
 * Unguessable tokens (resume tokens, challenge nonces) as base64url text, drawn from a pool of
 * random bytes refilled POOL_BYTES at a time: each call to the system's random source costs
 * several microseconds, as much as the rest of a registration's token work, and one refill serves
 * a hundred tokens. Node pools the entropy of randomUUID the same way. A token's bytes are zeroed
 * once drawn, so the pool never holds a token that was handed out.
 */
const POOL_BYTES = 4096;
const pool = Buffer.alloc(POOL_BYTES);
let offset = POOL_BYTES;

/** `bytes` random bytes (at most 4096) as base64url text. */
export function randomToken(bytes: number): string {
  if (!Number.isInteger(bytes) || bytes < 1 || bytes > POOL_BYTES) throw new RangeError(`randomToken: 1 to ${POOL_BYTES} bytes, not ${bytes}`);
  if (offset + bytes > POOL_BYTES) {
    randomFillSync(pool);
    offset = 0;
  }
  const token = pool.toString("base64url", offset, offset + bytes);
  pool.fill(0, offset, offset + bytes);
  offset += bytes;
  return token;
}
