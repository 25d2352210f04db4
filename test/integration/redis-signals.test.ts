import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sha256, type TestPeer, type Transport } from "../helpers/peers.ts";
import { startRedisCluster } from "../helpers/redis-cluster.ts";
import { isType, type NodesRedis, PeerPool, settled, startNode, startNodes, unique } from "../helpers/redis-nodes.ts";
import { startRedisServer } from "../helpers/redis-server.ts";
import type { ServerProcess } from "../helpers/server-process.ts";

/*
 * Targeted messages between nodes (signal and relay go straight to the target's node on its own
 * channel, and that node decides): every rule that holds in one process holds across nodes, on
 * one redis-server and on a 3-master Redis Cluster, over both transports. Each peer connects to
 * the port of the node it is meant to live on, so every message here crosses nodes.
 */

const offer = (n: number): Record<string, unknown> => ({ signal_type: "offer", sdp: `v=0 ${n}` });
const errorOf = (peer: TestPeer, code: number): Promise<unknown> => peer.next((message) => message.type === "error" && message.payload?.["code"] === code);

describe.each(["single", "cluster"] as const)("targeted messages across nodes on Redis %s", (mode) => {
  let redis: NodesRedis | undefined;
  let nodes: ServerProcess[] = [];
  let A: ServerProcess;
  let B: ServerProcess;
  const pool = new PeerPool();
  // A departing peer leaves at once (resume has its own tests); a budget small enough to reach.
  const config = { resume_grace: 0, rate_limit_per_sec: 50, rate_limit_burst: 400 };

  beforeAll(async () => {
    redis = mode === "single" ? await startRedisServer() : await startRedisCluster();
    nodes = await startNodes(redis, [{ config }, { config }]);
    [A, B] = nodes as [ServerProcess, ServerProcess];
  });
  afterAll(async () => {
    pool.closeAll();
    await Promise.all(nodes.map((node) => node.stop()));
    await redis?.stop();
  });

  describe.each<[Transport, Transport]>([
    ["ws", "sio"],
    ["sio", "ws"],
  ])("%s sender, %s target", (sender, target) => {
    it("delivers by fingerprint and by alias, in the order sent, and the body names the target's fingerprint", async () => {
      const ns = unique("order");
      const a = await pool.on(A, sender, { namespace: ns });
      const b = await pool.on(B, target, { namespace: ns });
      for (let seq = 0; seq < 200; seq++) a.send(seq % 2 === 0 ? "signal" : "relay", { to: seq % 3 === 0 ? b.alias : b.fingerprint, payload: { seq } });
      const seen: unknown[] = [];
      for (let i = 0; i < 200; i++) {
        const message = await b.next((m) => m.type === "signal" || m.type === "relay");
        expect(message).toMatchObject({ from: a.fingerprint, to: b.fingerprint });
        seen.push(message.payload?.["seq"]);
      }
      expect(seen).toEqual(Array.from({ length: 200 }, (_, i) => i));
    });

    it("403 when the two share no namespace or room; nothing arrives, and the sender's later replies still come", async () => {
      const a = await pool.on(A, sender, { namespace: unique("one") });
      const b = await pool.on(B, target, { namespace: unique("other") });
      a.send("signal", { to: b.fingerprint, payload: offer(1) });
      expect(await errorOf(a, 403)).toMatchObject({ payload: { code: 403, ref: "signal" } });
      a.send("relay", { to: b.alias, payload: { x: 1 } });
      expect(await errorOf(a, 403)).toMatchObject({ payload: { code: 403, ref: "relay" } });
      await settled(a);
      expect(await b.nothing((m) => m.type === "signal" || m.type === "relay", 300)).toBe(true);
    });

    it("404 for an unknown fingerprint or alias, and for a target that left: in request order, before the next reply", async () => {
      const ns = unique("gone");
      const a = await pool.on(A, sender, { namespace: ns });
      const b = await pool.on(B, target, { namespace: ns });
      const unknown = sha256(unique("nobody"));
      a.send("signal", { to: unknown, payload: offer(2) });
      a.send("relay", { to: unique("no-alias"), payload: {} });
      a.send("ping");
      await a.next("pong");
      // The refusals came back in request order, and before the next request's reply.
      expect(a.arrivals.slice(-3).map((message) => [message.type, message.payload?.["code"] ?? null, message.payload?.["ref"] ?? null])).toEqual([
        ["error", 404, "signal"],
        ["error", 404, "relay"],
        ["pong", null, null],
      ]);

      b.close();
      await a.next(isType("peer_left", b.fingerprint, ns));
      a.send("signal", { to: b.fingerprint, payload: offer(3) });
      expect(await errorOf(a, 404)).toMatchObject({ payload: { code: 404, ref: "signal" } });
    });

    it("after a kick from the only room they shared, the kicked member is out of reach both ways (403)", async () => {
      const room = unique("room");
      const owner = await pool.on(A, sender);
      expect((await owner.request("create_room", { payload: { room_id: room, max_size: 4 } }, ["room_created"])).type).toBe("room_created");
      const member = await pool.on(B, target);
      expect((await member.request("join_room", { payload: { room_id: room } }, ["peer_list"])).type).toBe("peer_list");
      owner.send("signal", { to: member.fingerprint, payload: offer(4) });
      expect(await member.next("signal")).toMatchObject({ from: owner.fingerprint });

      owner.send("kick", { payload: { room_id: room, fingerprint: member.fingerprint } });
      await member.next("kick");
      owner.send("signal", { to: member.fingerprint, payload: offer(5) });
      expect(await errorOf(owner, 403)).toMatchObject({ payload: { ref: "signal" } });
      member.send("signal", { to: owner.fingerprint, payload: offer(6) });
      expect(await errorOf(member, 403)).toMatchObject({ payload: { ref: "signal" } });
    });

    it("the sender's rate limit holds: past its budget it gets 429 and the target no more than the budget", async () => {
      const ns = unique("budget");
      const a = await pool.on(A, sender, { namespace: ns });
      const b = await pool.on(B, target, { namespace: ns });
      for (let seq = 0; seq < 600; seq++) a.send("relay", { to: b.fingerprint, payload: { seq } });
      expect(await errorOf(a, 429)).toMatchObject({ payload: { code: 429 } });
      let delivered = 0;
      while (!(await b.nothing("relay", 500))) delivered++;
      expect(delivered).toBeGreaterThan(0);
      expect(delivered).toBeLessThan(600);
    });
  });

  it("a Socket.IO sender with an ack callback gets `ok` for a delivered signal and its 404 or 403 in the callback", async () => {
    const ns = unique("acks");
    const a = await pool.on(A, "sio", { namespace: ns });
    const b = await pool.on(B, "ws", { namespace: ns });
    const loner = await pool.on(B, "ws", { namespace: unique("alone") });
    expect(await a.request("signal", { to: b.fingerprint, payload: offer(7) })).toMatchObject({ type: "ok", payload: { ref: "signal" } });
    expect(await b.next("signal")).toMatchObject({ from: a.fingerprint, payload: offer(7) });
    expect(await a.request("signal", { to: sha256(unique("x")), payload: offer(8) })).toMatchObject({ type: "error", payload: { code: 404 } });
    expect(await a.request("relay", { to: loner.fingerprint, payload: {} })).toMatchObject({ type: "error", payload: { code: 403 } });
  });

  it("404 while the target's node is dead, before and after the deployment reaps it", async () => {
    const ns = unique("dead");
    const doomed = await startNode(redis as NodesRedis, { config });
    try {
      const a = await pool.on(A, "ws", { namespace: ns });
      const b = await pool.on(doomed, "sio", { namespace: ns });
      a.send("signal", { to: b.fingerprint, payload: offer(9) });
      expect(await b.next("signal")).toMatchObject({ from: a.fingerprint });
      await doomed.stop("SIGKILL");
      a.send("signal", { to: b.fingerprint, payload: offer(10) });
      expect(await errorOf(a, 404)).toMatchObject({ payload: { code: 404, ref: "signal" } });
      // Reaped (peer_left), then still 404.
      await a.next(isType("peer_left", b.fingerprint, ns), 15_000);
      a.send("relay", { to: b.fingerprint, payload: {} });
      expect(await errorOf(a, 404)).toMatchObject({ payload: { code: 404, ref: "relay" } });
    } finally {
      await doomed.stop("SIGKILL");
    }
  });
});
