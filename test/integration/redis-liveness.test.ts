import { randomUUID } from "node:crypto";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { NodeLiveness } from "../../src/backends/redis/node-liveness.ts";
import { openRedis, type RedisClient } from "../../src/backends/redis/redis-connections.ts";
import { freePort } from "../helpers/ports.ts";
import { startRedisServer, type RedisServer } from "../helpers/redis-server.ts";
import { startTcpProxy, type TcpProxy } from "../helpers/tcp-proxy.ts";
import { waitFor } from "../helpers/wait.ts";

/*
 * Node liveness of two nodes, A and B, on a private redis-server, each heartbeat connection through
 * a TCP relay of its own: the test decides when each node can reach Redis. Both are cut off longer
 * than the heartbeat ttl (their keys expire, as on a replica promoted after a slow failover), then
 * come back one after the other. Ttl and interval are scaled down.
 */

const TTL_MS = 600;
const INTERVAL_MS = 150;
/** Options of the broker's heartbeat connection, with a quick reconnection. */
const BEAT_OPTIONS = { enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: 500, retryStrategy: () => 50 };

let redis: RedisServer;
/** A port nobody listens on: a relay sent there refuses every connection, as a Redis that is down. */
let nowhere = 0;
const running: { liveness: NodeLiveness; client: RedisClient; proxy: TcpProxy }[] = [];

beforeAll(async () => {
  redis = await startRedisServer();
  nowhere = await freePort();
});
afterEach(async () => {
  for (const { liveness, client, proxy } of running.splice(0)) {
    proxy.retarget(redis.port);
    await liveness.stop();
    client.disconnect();
    await proxy.close();
  }
});
afterAll(async () => {
  await redis?.stop();
});

/** Starts the liveness of `nodeId` through a relay of its own; `reaped` collects the nodes it removed. */
async function startNode(keyPrefix: string, nodeId: string, reaped: string[]): Promise<{ proxy: TcpProxy; client: RedisClient }> {
  const proxy = await startTcpProxy(redis.port);
  const client = openRedis({ mode: "single", url: `redis://127.0.0.1:${proxy.port}` }, BEAT_OPTIONS);
  client.on("error", () => undefined);
  await new Promise((resolve) => client.once("ready", resolve));
  const liveness = new NodeLiveness({
    redis: client,
    keyPrefix,
    nodeId,
    instance: undefined,
    ttlMs: TTL_MS,
    intervalMs: INTERVAL_MS,
    removeNode: async (node) => {
      reaped.push(node);
      return [];
    },
    onDepartures: () => undefined,
    logger: pino({ level: "silent" }),
  });
  await liveness.start();
  running.push({ liveness, client, proxy });
  return { proxy, client };
}

const cutOff = (proxy: TcpProxy): void => {
  proxy.retarget(nowhere);
  proxy.cut();
};
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Nodes A and B beat on one prefix, both lose Redis for longer than the ttl, then B is back. */
async function cutOffTogetherThenBBack(): Promise<{ a: Awaited<ReturnType<typeof startNode>>; reaped: string[] }> {
  const prefix = `{lv-${randomUUID().slice(0, 8)}}:`;
  const reaped: string[] = [];
  const a = await startNode(prefix, "A", reaped);
  const b = await startNode(prefix, "B", reaped);
  await sleep(2 * INTERVAL_MS);
  cutOff(a.proxy);
  cutOff(b.proxy);
  await sleep(TTL_MS + 2 * INTERVAL_MS);
  b.proxy.retarget(redis.port);
  await waitFor(() => b.client.status, (status) => status === "ready", { timeoutMs: 2_000, what: "B to reconnect" });
  return { a, reaped };
}

describe("nodes cut off from Redis together, past the heartbeat ttl", () => {
  it("the first one back does not take the other for dead while it is back within a ttl", async () => {
    const { a, reaped } = await cutOffTogetherThenBBack();
    await sleep(TTL_MS / 2);
    a.proxy.retarget(redis.port);
    await waitFor(() => a.client.status, (status) => status === "ready", { timeoutMs: 2_000, what: "A to reconnect" });
    await sleep(2 * TTL_MS);

    expect(reaped).toEqual([]);
  });

  it("one that stays away is removed, a ttl after the other is back", async () => {
    const { reaped } = await cutOffTogetherThenBBack();
    const backAt = Date.now();

    await waitFor(() => reaped, (nodes) => nodes.includes("A"), { timeoutMs: TTL_MS + 4 * INTERVAL_MS, what: "B to remove A" });
    expect(Date.now() - backAt).toBeGreaterThanOrEqual(TTL_MS - INTERVAL_MS);
    expect(reaped).toEqual(["A"]);
  });
});
