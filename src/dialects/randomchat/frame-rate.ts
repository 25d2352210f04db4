import { TokenBucketPolicy, type Bucket } from "../../limits/token-bucket.ts";

/**
 * The original's per-connection limit, `MAX_MSG_PER_SECOND`: each connection may send that many
 * frames at once and then that many a second (a token bucket whose burst is the rate). A frame
 * over it is answered RATE_LIMIT and goes no further. This sits in front of the core's own
 * per-peer budget (rate_limit_per_sec), whose 429 the binding answers the same way.
 */
export class FrameRate {
  private readonly policy: TokenBucketPolicy;

  /** @param now a monotonic clock in ms (performance.now in the server; a fake one in unit tests). */
  constructor(
    perSec: number,
    private readonly now: () => number,
  ) {
    this.policy = new TokenBucketPolicy(perSec, perSec);
  }

  /** A new connection's full bucket. */
  bucket(): Bucket {
    return this.policy.full(this.now());
  }

  /** Takes one frame's token; false when the connection is over its rate. */
  take(bucket: Bucket): boolean {
    return this.policy.take(bucket, this.now());
  }
}
