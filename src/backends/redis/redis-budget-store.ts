import type { RedisClient } from "./redis-connections.ts";
import type { BudgetStore, HandOver, SavedBudget } from "../budget-store.ts";

/**
 * Takes a kept budget: `<tokens>:<ttlMs>:<connectionId>` and the key's remaining PTTL, then
 * deletes it. KEYS[1]: the budget key; ARGV[1]: the connection whose budget is wanted, "" for any.
 * The age comes from Redis's own clock (ttl - pttl), so the nodes' clocks never enter into it.
 */
const TAKE_SCRIPT = `
local value = redis.call('GET', KEYS[1])
if not value then return false end
if ARGV[1] ~= '' and string.match(value, '^[^:]*:[^:]*:(.*)$') ~= ARGV[1] then return false end
local left = redis.call('PTTL', KEYS[1])
redis.call('DEL', KEYS[1])
return {value, left}
`;

/** How often a hand-over take looks again for the budget it waits for. */
const HAND_OVER_POLL_MS = 10;

type BudgetRedis = RedisClient & { psTakeBudget(key: string, from: string): Promise<[string, number] | null> };

/**
 * Budgets kept in Redis for every node of the deployment, under `<prefix>budget:<fingerprint>`,
 * each with a TTL (`SET PX`). Calls fail as fast as the given client does (the broker's limits
 * connection: no offline queue, a short command timeout); the caller decides what a failure means.
 */
export class RedisBudgetStore implements BudgetStore {
  private readonly redis: BudgetRedis;
  private closed = false;

  constructor(
    redis: RedisClient,
    private readonly keyPrefix: string,
  ) {
    redis.defineCommand("psTakeBudget", { numberOfKeys: 1, lua: TAKE_SCRIPT });
    this.redis = redis as BudgetRedis;
  }

  async save(fingerprint: string, connectionId: string, tokens: number, ttlMs: number): Promise<void> {
    const ttl = Math.max(1, Math.ceil(ttlMs));
    await this.redis.set(this.key(fingerprint), `${tokens}:${ttl}:${connectionId}`, "PX", ttl);
  }

  async take(fingerprint: string, handOver?: HandOver): Promise<SavedBudget | undefined> {
    const key = this.key(fingerprint);
    const deadline = handOver === undefined ? 0 : Date.now() + handOver.waitMs;
    for (;;) {
      const reply = await this.redis.psTakeBudget(key, handOver?.from ?? "");
      if (reply !== null) return parse(reply);
      // Redis has no cheap "wait for this key": poll, only while a replaced connection is closing.
      if (this.closed || Date.now() + HAND_OVER_POLL_MS > deadline) return undefined;
      await new Promise((resolve) => setTimeout(resolve, HAND_OVER_POLL_MS));
    }
  }

  /** The Redis connection belongs to the broker, which closes it. */
  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }

  private key(fingerprint: string): string {
    return `${this.keyPrefix}budget:${fingerprint}`;
  }
}

function parse([value, left]: [string, number]): SavedBudget {
  const first = value.indexOf(":");
  const second = value.indexOf(":", first + 1);
  const ttl = Number(value.slice(first + 1, second));
  return { tokens: Number(value.slice(0, first)), ageMs: Math.max(0, ttl - Math.max(0, left)), connectionId: value.slice(second + 1) };
}
