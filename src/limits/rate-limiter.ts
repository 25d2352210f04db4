import type { Redis } from "ioredis";
import { BurstyRateLimiter, RateLimiterMemory, RateLimiterRedis, type RateLimiterAbstract } from "rate-limiter-flexible";

/** Per-peer message budget. */
export interface PeerRateLimiter {
  /** Takes one token for `key`; resolves false when the peer is over its limit. */
  consume(key: string): Promise<boolean>;
  /** Forgets a peer's bucket (on disconnect). */
  forget(key: string): void;
}

/**
 * A token bucket approximated with rate-limiter-flexible: `perSec` tokens each second, plus a
 * reserve of `burst - perSec` tokens that refills over `burst / perSec` seconds. A peer can
 * therefore send `burst` messages at once, then `perSec` a second.
 */
export function createMemoryRateLimiter(perSec: number, burst: number): PeerRateLimiter {
  const steady = new RateLimiterMemory({ points: perSec, duration: 1 });
  const reserve = burst > perSec ? new RateLimiterMemory({ keyPrefix: "burst", ...reserveOf(perSec, burst) }) : undefined;
  return wrap(steady, reserve);
}

/** Registrations one public key may make: a burst of this many, then one a second. */
export const REGISTRATION_BURST = 10;

/**
 * Registrations per public key, kept in Redis for the whole deployment (rate-limiter-flexible's
 * Redis limiter, with an in-memory insurance limiter while Redis is unreachable).
 *
 * Why registrations and not every message: a fingerprint has one connection at a time across all
 * nodes, so the node holding it limits its messages exactly in memory; a Redis round trip per
 * message cost 4x the throughput in the nodes benchmark. What only Redis can stop is a peer that
 * reconnects to node after node to start each time with a full budget: it is this limiter that
 * makes reconnecting cost tokens cluster-wide.
 */
export function createRedisRegistrationLimiter(redis: Redis, keyPrefix: string): PeerRateLimiter {
  const limiter = new BurstyRateLimiter(
    new RateLimiterRedis({
      storeClient: redis,
      keyPrefix: `${keyPrefix}reg`,
      points: 1,
      duration: 1,
      rejectIfRedisNotReady: true,
      insuranceLimiter: new RateLimiterMemory({ keyPrefix: "reg", points: 1, duration: 1 }),
    }),
    new RateLimiterRedis({
      storeClient: redis,
      keyPrefix: `${keyPrefix}regb`,
      points: REGISTRATION_BURST - 1,
      duration: REGISTRATION_BURST,
      rejectIfRedisNotReady: true,
      insuranceLimiter: new RateLimiterMemory({ keyPrefix: "regb", points: REGISTRATION_BURST - 1, duration: REGISTRATION_BURST }),
    }),
  );
  return {
    consume: (key) => limiter.consume(key).then(allowed, refused),
    // Registration budgets must outlive connections: that is their point.
    forget: () => undefined,
  };
}

function reserveOf(perSec: number, burst: number): { points: number; duration: number } {
  return { points: burst - perSec, duration: Math.max(1, Math.ceil(burst / perSec)) };
}

const allowed = (): boolean => true;
const refused = (rejection: unknown): boolean => {
  if (rejection instanceof Error) throw rejection;
  return false;
};

function wrap(steady: RateLimiterAbstract, reserve: RateLimiterAbstract | undefined): PeerRateLimiter {
  const limiter = reserve === undefined ? steady : new BurstyRateLimiter(steady, reserve);
  return {
    consume: (key) => limiter.consume(key).then(allowed, refused),
    forget: (key) => {
      void steady.delete(key);
      if (reserve !== undefined) void reserve.delete(key);
    },
  };
}
