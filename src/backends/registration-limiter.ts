import type { RedisClient } from "./redis/redis-connections.ts";
import { BurstyRateLimiter, RateLimiterMemory, RateLimiterRedis, type RateLimiterAbstract } from "rate-limiter-flexible";

/**
 * Registrations per public key, and per client address whatever the key (so that rotating keys
 * buys no more registrations), each a RegistrationLimiter, the two together RegistrationLimits.
 * One limit for the whole deployment: in memory for one process,
 * in the cluster primary for the workers of one machine (src/backends/cluster/cluster-limits.ts), in Redis
 * for nodes. Registrations outlive connections: nothing is forgotten on disconnect.
 */
export interface RegistrationLimiter {
  /** Counts one registration of `key` (a fingerprint, or an address); resolves false when it is over its limit. */
  consume(key: string): Promise<boolean>;
}

/** Which limit refuses a registration: its client address's, or its public key's. */
export type RegistrationRefusal = "address" | "key";

/**
 * Both registration limits of a deployment, counted as one step: in the cluster that is one call
 * to the primary, not one per limit.
 */
export interface RegistrationLimits {
  /**
   * Counts one registration of `key` from `address` (undefined: a connection without one counts
   * against the key only): the address first, and the key only if the address may register, so a
   * client rotating keys never fills the per-key limiter either. Resolves with the limit that
   * refuses it, or undefined when both allow it.
   */
  consume(address: string | undefined, key: string): Promise<RegistrationRefusal | undefined>;
}

/** The two limits of one backend as RegistrationLimits: the address's counted first, then the key's. */
export function pairedLimits(addresses: RegistrationLimiter, keys: RegistrationLimiter): RegistrationLimits {
  return {
    async consume(address, key) {
      if (address !== undefined && !(await addresses.consume(address))) return "address";
      return (await keys.consume(key)) ? undefined : "key";
    },
  };
}

/** Registrations one public key may make at once; after that, one a second (see the limiters below). */
export const REGISTRATION_BURST = 10;

/** A registration limit: `perSec` a second, and `burst` at once. */
export interface RegistrationRate {
  readonly perSec: number;
  readonly burst: number;
}

/** The limit of each client address unless configured (registration_rate_per_ip, registration_burst_per_ip): 100 at once, then 20 a second. */
export const ADDRESS_REGISTRATIONS: RegistrationRate = { perSec: 20, burst: 100 };

/** The limit of each public key: 10 at once, then one a second. */
export const KEY_REGISTRATIONS: RegistrationRate = { perSec: 1, burst: REGISTRATION_BURST };

/**
 * rate-limiter-flexible's pair for a RegistrationRate: `perSec` points a second, and a reserve of
 * `burst - perSec` points that comes back `burst / perSec` seconds after it is first used. So a
 * public key (1 a second, 10 at once) may register 10 times at once, then once a second, plus the
 * reserve again every 10 s.
 */
function pair(rate: RegistrationRate): { steady: { points: number; duration: number }; reserve: { points: number; duration: number } | undefined } {
  const reserve = rate.burst - rate.perSec;
  return {
    steady: { points: rate.perSec, duration: 1 },
    reserve: reserve > 0 ? { points: reserve, duration: Math.ceil(rate.burst / rate.perSec) } : undefined,
  };
}

/**
 * Registrations counted in this process: a single server, or the cluster primary for its workers.
 * Default: per public key; `prefix` names another limit's keys (e.g. per client address).
 */
export function createMemoryRegistrationLimiter(rate: RegistrationRate = KEY_REGISTRATIONS, prefix = "reg"): RegistrationLimiter {
  const { steady, reserve } = pair(rate);
  const first = new RateLimiterMemory({ keyPrefix: prefix, ...steady });
  return wrap(reserve === undefined ? first : new BurstyRateLimiter(first, new RateLimiterMemory({ keyPrefix: `${prefix}b`, ...reserve })));
}

/**
 * Registrations counted in Redis for every node (rate-limiter-flexible's Redis limiter), with an
 * in-memory insurance limiter while Redis is unreachable. Keys `<keyPrefix><prefix>*`.
 */
export function createRedisRegistrationLimiter(redis: RedisClient, keyPrefix: string, rate: RegistrationRate = KEY_REGISTRATIONS, prefix = "reg"): RegistrationLimiter {
  const { steady, reserve } = pair(rate);
  const limiter = (name: string, points: { points: number; duration: number }): RateLimiterRedis =>
    new RateLimiterRedis({
      storeClient: redis,
      keyPrefix: `${keyPrefix}${name}`,
      ...points,
      rejectIfRedisNotReady: true,
      insuranceLimiter: new RateLimiterMemory({ keyPrefix: name, ...points }),
    });
  const first = limiter(prefix, steady);
  return wrap(reserve === undefined ? first : new BurstyRateLimiter(first, limiter(`${prefix}b`, reserve)));
}

/** The prefix of the per-address registration limit's keys (`ps:regip*` in Redis). */
export const ADDRESS_PREFIX = "regip";

/**
 * Both limits counted in this process (a single server, the cluster primary for its workers, a
 * worker while the primary does not answer): per client address at `addressRate`, per key at
 * KEY_REGISTRATIONS.
 */
export function createMemoryRegistrationLimits(addressRate: RegistrationRate = ADDRESS_REGISTRATIONS): RegistrationLimits {
  return pairedLimits(createMemoryRegistrationLimiter(addressRate, ADDRESS_PREFIX), createMemoryRegistrationLimiter());
}

/** Both limits counted in Redis for every node, keys `<keyPrefix>regip*` and `<keyPrefix>reg*`. */
export function createRedisRegistrationLimits(redis: RedisClient, keyPrefix: string, addressRate: RegistrationRate = ADDRESS_REGISTRATIONS): RegistrationLimits {
  return pairedLimits(createRedisRegistrationLimiter(redis, keyPrefix, addressRate, ADDRESS_PREFIX), createRedisRegistrationLimiter(redis, keyPrefix));
}

/** The limit of registrations per client address (registration_rate_per_ip, registration_burst_per_ip). */
export const addressRegistrations = (config: { readonly registrationRatePerIp: number; readonly registrationBurstPerIp: number }): RegistrationRate => ({
  perSec: config.registrationRatePerIp,
  burst: config.registrationBurstPerIp,
});

const allowed = (): boolean => true;
const refused = (rejection: unknown): boolean => {
  if (rejection instanceof Error) throw rejection;
  return false;
};

function wrap(limiter: BurstyRateLimiter | RateLimiterAbstract): RegistrationLimiter {
  return { consume: (key) => limiter.consume(key).then(allowed, refused) };
}
