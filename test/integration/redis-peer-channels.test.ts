import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openRedis, type RedisClient } from "../../src/backends/redis/redis-connections.ts";
import { RedisPeerChannels } from "../../src/backends/redis/redis-peer-channels.ts";
import { freePort } from "../helpers/ports.ts";
import { startRedisServer, type RedisServer } from "../helpers/redis-server.ts";
import { startTcpProxy, type TcpProxy } from "../helpers/tcp-proxy.ts";
import { waitFor } from "../helpers/wait.ts";

/*
 * A node's peer channels on a private redis-server, the subscriber connection through a TCP relay
 * the test can cut: after an outage a node's publisher can be back before its subscriber (they
 * reconnect on their own), and while its own subscriptions are down the other nodes' may be too.
 * A frame nobody received in that time is "not reachable yet" (settling), not a peer that is gone.
 */

/** How long after the subscriber is back a peer nobody holds still counts as not yet reachable. */
const SETTLE_MS = 300;
const QUICK = { maxRetriesPerRequest: null, retryStrategy: () => 50 };

let redis: RedisServer;
let proxy: TcpProxy;
let nowhere = 0;
let pub: RedisClient;
let sub: RedisClient;

beforeAll(async () => {
  redis = await startRedisServer();
  proxy = await startTcpProxy(redis.port);
  nowhere = await freePort();
  pub = openRedis({ mode: "single", url: `redis://127.0.0.1:${redis.port}` }, QUICK);
  sub = openRedis({ mode: "single", url: `redis://127.0.0.1:${proxy.port}` }, QUICK);
  for (const client of [pub, sub]) client.on("error", () => undefined);
  await Promise.all([pub, sub].map((client) => new Promise((resolve) => client.once("ready", resolve))));
});
afterAll(async () => {
  pub?.disconnect();
  sub?.disconnect();
  await proxy?.close();
  await redis?.stop();
});

describe("peer channels after the subscriber lost Redis", () => {
  it("a frame nobody got is 'not reachable yet' while the subscriber is down, and for the settle time after it is back; then the peer is gone", async () => {
    const channels = new RedisPeerChannels(pub, sub, "test:to:", SETTLE_MS);
    const frames: string[] = [];
    channels.onFrame((peer, frame) => frames.push(`${peer}:${frame}`));
    await channels.hold("held");
    expect(await channels.send("held", "one")).toBe(1);
    // Redis counted the subscriber; the frame itself is still on its way to it, and the cut below
    // would drop it in the relay.
    await waitFor(() => frames, (got) => got.includes("held:one"), { timeoutMs: 2_000, intervalMs: 10, what: "the frame sent before the outage" });
    expect(await channels.send("nobody", "lost")).toBe(0);
    expect(channels.settling(), "before any outage, nobody is nobody").toBe(false);

    // The subscriber loses Redis and cannot come back; the publisher stays.
    proxy.retarget(nowhere);
    proxy.cut();
    await waitFor(() => sub.status, (status) => status !== "ready", { timeoutMs: 5_000, intervalMs: 10, what: "the subscriber to notice the cut" });
    expect(await channels.send("nobody", "lost")).toBe(0);
    expect(channels.settling(), "while this node's subscriber is down").toBe(true);

    // Back: the held peer's channel is subscribed again, and for a moment nobody may just be late.
    proxy.retarget(redis.port);
    await waitFor(() => sub.status, (status) => status === "ready", { timeoutMs: 5_000, intervalMs: 10, what: "the subscriber to come back" });
    expect(channels.settling(), "just after the subscriber came back").toBe(true);
    await waitFor(() => channels.send("held", "two"), (receivers) => receivers === 1, { timeoutMs: 5_000, intervalMs: 20, what: "the held peer's channel to be subscribed again" });
    await waitFor(() => channels.settling(), (settling) => !settling, { timeoutMs: 5_000, intervalMs: 20, what: "the settle time to pass" });
    expect(await channels.send("nobody", "lost")).toBe(0);
    await waitFor(() => frames, (got) => got.includes("held:two"), { timeoutMs: 2_000, intervalMs: 10, what: "the frame to the held peer" });
    expect(frames).toEqual(["held:one", "held:two"]);
  });
});
