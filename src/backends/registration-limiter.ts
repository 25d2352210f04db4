import type { Redis } from "ioredis";
import { BurstyRateLimiter, RateLimiterMemory, RateLimiterRedis, type RateLimiterAbstract } from "rate-limiter-flexible";

/**
 * Registrations per public key. One limit for the whole deployment: in memory for one process,
 * in the cluster primary for the workers of one machine (src/backends/cluster/cluster-limits.ts), in Redis
 * for nodes. Registrations outlive connections: nothing is forgotten on disconnect.
 */
export interface RegistrationLimiter {
  /** Counts one registration of `key`; resolves false when the key is over its limit. */
  consume(key: string): Promise<boolean>;
}

/** Registrations one public key may make at once; after that, one a second (see the limiters below). */
export const REGISTRATION_BURST = 10;

/**
 * rate-limiter-flexible's pair for registrations: one point a second, and a reserve of
 * REGISTRATION_BURST - 1 points that comes back REGISTRATION_BURST seconds after it is first used.
 * So a key may register 10 times at once, then once a second, plus the reserve again every 10 s.
 */
const STEADY = { points: 1, duration: 1 } as const;
const RESERVE = { points: REGISTRATION_BURST - 1, duration: REGISTRATION_BURST } as const;

/** Registrations counted in this process: a single server, or the cluster primary for its workers. */
export function createMemoryRegistrationLimiter(): RegistrationLimiter {
  return wrap(new BurstyRateLimiter(new RateLimiterMemory({ keyPrefix: "reg", ...STEADY }), new RateLimiterMemory({ keyPrefix: "regb", ...RESERVE })));
}

/**
 * Registrations counted in Redis for every node (rate-limiter-flexible's Redis limiter), with an
 * in-memory insurance limiter while Redis is unreachable.
 */
export function createRedisRegistrationLimiter(redis: Redis, keyPrefix: string): RegistrationLimiter {
  return wrap(
    new BurstyRateLimiter(
      new RateLimiterRedis({
        storeClient: redis,
        keyPrefix: `${keyPrefix}reg`,
        ...STEADY,
        rejectIfRedisNotReady: true,
        insuranceLimiter: new RateLimiterMemory({ keyPrefix: "reg", ...STEADY }),
      }),
      new RateLimiterRedis({
        storeClient: redis,
        keyPrefix: `${keyPrefix}regb`,
        ...RESERVE,
        rejectIfRedisNotReady: true,
        insuranceLimiter: new RateLimiterMemory({ keyPrefix: "regb", ...RESERVE }),
      }),
    ),
  );
}

const allowed = (): boolean => true;
const refused = (rejection: unknown): boolean => {
  if (rejection instanceof Error) throw rejection;
  return false;
};

function wrap(limiter: BurstyRateLimiter | RateLimiterAbstract): RegistrationLimiter {
  return { consume: (key) => limiter.consume(key).then(allowed, refused) };
}
