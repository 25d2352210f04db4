import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ClusterLimits } from "../../src/backends/cluster/cluster-limits.ts";
import type { LimitsCalls } from "../../src/protocol/cluster-messages.ts";
import { MemoryBudgetStore } from "../../src/backends/memory/memory-budget-store.ts";
import { createMemoryRegistrationLimits, createRedisRegistrationLimits } from "../../src/backends/registration-limiter.ts";
import { RedisBudgetStore } from "../../src/backends/redis/redis-budget-store.ts";
import { forkLimitsHost, type LimitsHostProcess } from "../helpers/limits-host.ts";
import { startRedisServer, type RedisServer } from "../helpers/redis-server.ts";
import { limitsContract, type LimitsHandle } from "./limits.contract.ts";

/**
 * The limits of each mode against the one contract: in memory (one process), the workers' client
 * against a LimitsHost in another real process (as the cluster primary keeps it), Redis (a
 * private redis-server; each handle its own connection, as each node has).
 */

let host: LimitsHostProcess;
let redis: RedisServer;
beforeAll(async () => {
  [host, redis] = await Promise.all([forkLimitsHost(), startRedisServer()]);
});
afterAll(async () => {
  await Promise.all([host?.kill(), redis?.stop()]);
});

/** A ClusterLimits on a new link to `on`, fed the host's answers as the worker's dispatcher feeds it. */
function connect(on: LimitsHostProcess, callTimeoutMs: number): ClusterLimits {
  const link = on.link();
  const client = new ClusterLimits(link, { callTimeoutMs });
  link.onMessage((message) => client.receive(message));
  return client;
}

limitsContract("in memory", async () => {
  const handle: LimitsHandle = {
    budgets: new MemoryBudgetStore(),
    registrations: createMemoryRegistrationLimits(),
  };
  return { open: async () => handle, close: () => handle.budgets.close() };
});

limitsContract("the cluster primary's, over IPC", async () => {
  // One host for the file, as one primary for its workers; each test uses keys of its own.
  const clients: ClusterLimits[] = [];
  return {
    async open() {
      const client = connect(host, 2_000);
      clients.push(client);
      return { budgets: client.budgets, registrations: client.registrations };
    },
    async close() {
      await Promise.all(clients.map((client) => client.close()));
    },
  };
});

limitsContract("Redis", async () => {
  const keyPrefix = `test-${randomBytes(6).toString("hex")}:`;
  const connections: Redis[] = [];
  return {
    async open() {
      // As the broker's limits connection: fail fast, no offline queue.
      const connection = new Redis(redis.url, { enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: 1_000, lazyConnect: true });
      await connection.connect();
      connections.push(connection);
      return {
        budgets: new RedisBudgetStore(connection, keyPrefix),
        registrations: createRedisRegistrationLimits(connection, keyPrefix),
      };
    },
    async close() {
      for (const connection of connections) connection.disconnect();
    },
  };
});

describe("ClusterLimits when the primary does not answer", () => {
  it("decides registrations with its insurance limiter and fails budget calls, each within its timeout", async () => {
    const doomed = await forkLimitsHost();
    const client = connect(doomed, 200);
    try {
      const key = randomBytes(32).toString("hex");
      expect(await client.registrations.consume("127.0.0.2", key)).toBeUndefined();
      await doomed.kill();
      let started = performance.now();
      // The insurance limiter has seen none of this key's registrations: it allows the next one.
      expect(await client.registrations.consume("127.0.0.2", key)).toBeUndefined();
      expect(performance.now() - started).toBeLessThan(1_000);
      started = performance.now();
      await expect(client.budgets.take(key, { from: "conn-1", waitMs: 100 })).rejects.toThrow(/did not answer/);
      expect(performance.now() - started).toBeGreaterThanOrEqual(250);
      await expect(client.budgets.save(key, "conn-1", 1, 1_000)).rejects.toThrow(/did not answer/);
    } finally {
      await client.close();
      await doomed.kill();
    }
  });
});

// The shared host answers calls of several workers at once, each on its own link.
describe("LimitsHost with several workers", () => {
  it("answers each worker's calls on its own link", async () => {
    const [a, b] = [connect(host, 2_000), connect(host, 2_000)];
    const keys = Array.from({ length: 20 }, () => randomBytes(32).toString("hex"));
    await Promise.all(keys.map((key, i) => (i % 2 === 0 ? a : b).budgets.save(key, `conn-${i}`, i, 5_000)));
    const taken = await Promise.all(keys.map((key, i) => (i % 2 === 0 ? b : a).budgets.take(key)));
    expect(taken.map((budget) => budget?.tokens)).toEqual(keys.map((_key, i) => i));
    await Promise.all([a.close(), b.close()]);
  });
});

describe("ClusterLimits batching", () => {
  it("sends the calls of one turn to the primary as one IPC message", async () => {
    const sent: LimitsCalls[] = [];
    const client = new ClusterLimits({ send: (message) => sent.push(message) }, { callTimeoutMs: 100 });
    const calls = [client.budgets.save("a", "conn-a", 1, 1_000), client.budgets.take("b"), client.registrations.consume("127.0.0.2", "c")];
    await new Promise((resolve) => setImmediate(resolve));
    expect(sent.map((message) => message.ps)).toEqual(["limits-batch"]);
    expect((sent[0] as Extract<LimitsCalls, { ps: "limits-batch" }>).messages.map((call) => call.ps)).toEqual(["limits-save", "limits-take", "limits-register"]);
    await Promise.allSettled(calls);
    await client.close();
  });
});
