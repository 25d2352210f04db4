/**
 * A token bucket's level: `tokens` (fractional) as of `atMs` on this process's monotonic clock.
 * Taking a token updates it in place, so the per-message path allocates nothing.
 */
export interface Bucket {
  tokens: number;
  atMs: number;
}

/**
 * Token-bucket arithmetic for one configuration: a bucket holds at most `burst` tokens and gains
 * `perSec` a second, continuously; each message takes one. A peer can therefore send `burst`
 * messages at once, then `perSec` a second. Pure: every method is given the time.
 */
export class TokenBucketPolicy {
  /**
   * How long an empty bucket takes to fill, in ms (rounded up). A saved level older than this
   * says nothing that a full bucket does not: it is how long a saved budget must be kept.
   */
  readonly refillMs: number;
  private readonly perMs: number;

  constructor(
    readonly perSec: number,
    readonly burst: number,
  ) {
    if (!(perSec > 0) || !(burst >= 1)) throw new RangeError(`a token bucket needs perSec > 0 and burst >= 1 (got ${perSec}, ${burst})`);
    this.perMs = perSec / 1_000;
    this.refillMs = Math.ceil((burst / perSec) * 1_000);
  }

  /** A full bucket. */
  full(nowMs: number): Bucket {
    return { tokens: this.burst, atMs: nowMs };
  }

  /** The bucket that held `tokens` `ageMs` ago, refilled since then. */
  restored(tokens: number, ageMs: number, nowMs: number): Bucket {
    return { tokens: Math.min(this.burst, Math.max(0, tokens) + Math.max(0, ageMs) * this.perMs), atMs: nowMs };
  }

  /** Tokens in `bucket` at `nowMs`, without taking any. */
  level(bucket: Bucket, nowMs: number): number {
    return Math.min(this.burst, bucket.tokens + Math.max(0, nowMs - bucket.atMs) * this.perMs);
  }

  /** Takes one token if the bucket has one at `nowMs`; true if it did. */
  take(bucket: Bucket, nowMs: number): boolean {
    const tokens = this.level(bucket, nowMs);
    if (nowMs > bucket.atMs) bucket.atMs = nowMs;
    if (tokens < 1) {
      bucket.tokens = tokens;
      return false;
    }
    bucket.tokens = tokens - 1;
    return true;
  }
}
