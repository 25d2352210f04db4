import { describe, expect, it } from "vitest";
import { TokenBucketPolicy } from "../../src/limits/token-bucket.ts";

/** Takes as many tokens as `bucket` gives at `now`; returns how many. */
function drain(policy: TokenBucketPolicy, bucket: ReturnType<TokenBucketPolicy["full"]>, now: number): number {
  let taken = 0;
  while (policy.take(bucket, now)) taken++;
  return taken;
}

describe("TokenBucketPolicy (20/s, burst 40)", () => {
  const policy = new TokenBucketPolicy(20, 40);

  it("gives the burst at once, then perSec a second, continuously", () => {
    const bucket = policy.full(0);
    expect(drain(policy, bucket, 0)).toBe(40);
    expect(policy.take(bucket, 0)).toBe(false);
    expect(policy.take(bucket, 49)).toBe(false); // 0.98 of a token
    expect(policy.take(bucket, 50)).toBe(true);
    expect(drain(policy, bucket, 1_050)).toBe(20);
    // Never more than the burst, however long it rests.
    expect(drain(policy, bucket, 60_000)).toBe(40);
  });

  it("over any stretch lets through at most burst + perSec x elapsed", () => {
    const bucket = policy.full(0);
    let taken = 0;
    for (let now = 0; now <= 10_000; now += 7) taken += drain(policy, bucket, now);
    expect(taken).toBeLessThanOrEqual(40 + 20 * 10);
    expect(taken).toBeGreaterThanOrEqual(40 + 20 * 10 - 1);
  });

  it("a refused message costs nothing", () => {
    const bucket = policy.full(0);
    drain(policy, bucket, 0);
    for (let i = 0; i < 100; i++) policy.take(bucket, 10);
    expect(policy.level(bucket, 50)).toBeCloseTo(1, 9);
  });

  it("restores a saved level refilled by its age, capped at the burst", () => {
    expect(policy.restored(5, 0, 1_000)).toEqual({ tokens: 5, atMs: 1_000 });
    expect(policy.restored(5, 500, 1_000).tokens).toBeCloseTo(15, 9);
    expect(policy.restored(5, 10_000, 1_000).tokens).toBe(40);
    // Nonsense from a store (negative age or level) never adds tokens.
    expect(policy.restored(-3, -100, 0).tokens).toBe(0);
  });

  it("refillMs is how long an empty bucket takes to fill", () => {
    expect(policy.refillMs).toBe(2_000);
    expect(new TokenBucketPolicy(100, 200).refillMs).toBe(2_000);
    expect(new TokenBucketPolicy(3, 10).refillMs).toBe(3_334);
    const bucket = policy.restored(0, 0, 0);
    expect(policy.level(bucket, policy.refillMs)).toBe(40);
  });

  it("a clock that steps back never takes tokens away or gives any", () => {
    const bucket = policy.full(1_000);
    drain(policy, bucket, 1_000);
    expect(policy.take(bucket, 900)).toBe(false);
    expect(policy.level(bucket, 1_050)).toBeCloseTo(1, 9);
  });

  it("refuses a configuration that cannot work", () => {
    expect(() => new TokenBucketPolicy(0, 10)).toThrow(RangeError);
    expect(() => new TokenBucketPolicy(10, 0)).toThrow(RangeError);
  });
});
