import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, registeredPeer, type TestPeer } from "../helpers/peers.ts";
import { startNodes } from "../helpers/redis-nodes.ts";
import { startRedisServer, type RedisServer } from "../helpers/redis-server.ts";
import type { ServerProcess } from "../helpers/server-process.ts";

describe("rate limits with Redis", () => {
  let redis: RedisServer;
  let nodes: ServerProcess[] = [];

  beforeAll(async () => {
    redis = await startRedisServer();
    nodes = await startNodes(redis, [{ config: { rate_limit_per_sec: 5, rate_limit_burst: 10 } }, { config: { rate_limit_per_sec: 5, rate_limit_burst: 10 } }]);
  });
  afterAll(async () => {
    await Promise.all(nodes.map((node) => node.stop()));
    await redis.stop();
  });

  it("counts a key's registrations across nodes, so hopping between nodes cannot reset its budget", async () => {
    const publicKey = `hopper-${randomUUID()}`;
    const codes: (number | "registered")[] = [];
    for (let attempt = 0; attempt < 14; attempt++) {
      const node = nodes[attempt % 2] as ServerProcess;
      const peer = await connect(node, attempt % 4 < 2 ? "ws" : "sio");
      const reply = await peer.register({ publicKey });
      codes.push(reply.type === "registered" ? "registered" : (reply.payload?.code ?? -1));
      peer.close();
      await peer.closed;
    }
    // A burst of ten, then refusals with 429 (one token a second comes back: at most one more).
    expect(codes.slice(0, 10).every((code) => code === "registered")).toBe(true);
    expect(codes.filter((code) => code === 429).length).toBeGreaterThanOrEqual(3);
    expect(codes.every((code) => code === "registered" || code === 429)).toBe(true);
    // Another key is not affected.
    const other = await registeredPeer(nodes[0] as ServerProcess, "ws");
    other.close();
  });

  it("still limits each peer's messages on the node that holds it (429, the connection stays)", async () => {
    const peer: TestPeer = await registeredPeer(nodes[1] as ServerProcess, "ws");
    for (let i = 0; i < 40; i++) peer.send("ping");
    const replies = [];
    for (let i = 0; i < 40; i++) replies.push(await peer.next((m) => m.type === "pong" || m.type === "error"));
    expect(replies.some((m) => m.type === "error" && m.payload?.code === 429)).toBe(true);
    expect(replies.some((m) => m.type === "pong")).toBe(true);
    peer.close();
  });
});
