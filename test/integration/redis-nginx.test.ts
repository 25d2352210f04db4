import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NginxFront, type NginxProcess } from "../helpers/nginx.ts";
import { connectSio, connectWs, upgraded, type TestPeer } from "../helpers/peers.ts";
import { discover, isType, nodeIndexOf, PeerPool, startNodes, unique } from "../helpers/redis-nodes.ts";
import { startRedisServer, type RedisServer } from "../helpers/redis-server.ts";
import { getJson, type ServerProcess } from "../helpers/server-process.ts";

/*
 * For each Socket.IO Redis adapter ("classic": one channel; "sharded": SPUBLISH, a channel per
 * room): a private redis-server, two real nodes (one single process, one with two cluster
 * workers), and real nginx in front of them running the project's own site template rendered for
 * the nodes' loopback addresses. Peers reach the nodes directly and through nginx; nginx hashes the
 * client address, so peers from different 127.0.0.x source addresses land on different nodes.
 */

describe.each(["classic", "sharded"] as const)("Redis adapter %s", (adapter) => {
  let redis: RedisServer;
  let nodes: ServerProcess[] = [];
  const proxy = new NginxFront();
  const pool = new PeerPool();

  beforeAll(async () => {
    redis = await startRedisServer();
    // A closed peer departs at once here (resume_grace 0): resume has its own tests (resume.test.ts).
    const config = { resume_grace: 0 };
    nodes = await startNodes(redis, [{ adapter, config }, { adapter, workers: 2, config }]);
    // A missing or failing nginx fails the nginx tests with its message (never a skip).
    await proxy.start(nodes);
  });
  afterAll(async () => {
    pool.closeAll();
    await proxy.stop();
    await Promise.all(nodes.map((node) => node.stop()));
    await redis?.stop();
  });

  const nginx = (): NginxProcess => proxy.get();
  const [A, C] = [() => nodes[0] as ServerProcess, () => nodes[1] as ServerProcess];

  it(`the nodes talk through the ${adapter} adapter (Redis lists their ${adapter === "sharded" ? "shard " : ""}channel subscriptions)`, async () => {
    const client = new Redis(redis.url);
    try {
      const channels = (await client.call("PUBSUB", "CHANNELS")) as string[];
      const shardChannels = (await client.call("PUBSUB", "SHARDCHANNELS")) as string[];
      const ours = (list: string[]): string[] => list.filter((channel) => channel.startsWith("socket.io"));
      if (adapter === "sharded") {
        expect(ours(shardChannels)).not.toEqual([]);
        expect(ours(channels)).toEqual([]);
      } else {
        expect(ours(channels)).not.toEqual([]);
        expect(ours(shardChannels)).toEqual([]);
      }
    } finally {
      client.disconnect();
    }
  });

  it("signal, relay and broadcast cross nodes directly, in a namespace whose adapter room name is socket-id sized", async () => {
    // "ns:" + 17 characters = 20, the length the sharded adapter's dynamic mode takes for a socket id.
    const ns = `n${randomBytes(8).toString("hex")}`;
    expect(`ns:${ns}`).toHaveLength(20);
    const a = await pool.on(A(), "ws", { namespace: ns });
    const b = await pool.on(C(), "sio", { namespace: ns });
    const c = await pool.on(C(), "ws", { namespace: ns });
    const d = await pool.on(A(), "sio", { namespace: ns });
    for (const peer of [a, b, c]) await peer.next(isType("peer_joined", d.fingerprint, ns));
    a.send("signal", { to: b.fingerprint, payload: { signal_type: "offer", sdp: adapter } });
    expect(await b.next("signal")).toMatchObject({ from: a.fingerprint, to: b.fingerprint, payload: { signal_type: "offer", sdp: adapter } });
    b.send("relay", { to: a.alias, payload: { back: true } });
    expect(await a.next("relay")).toMatchObject({ from: b.fingerprint, to: a.fingerprint, payload: { back: true } });
    d.send("signal", { to: c.alias, payload: { sdp: "A->C" } });
    expect(await c.next("signal")).toMatchObject({ from: d.fingerprint, to: c.fingerprint });
    a.send("broadcast", { payload: { namespace: ns, data: { n: 1 }, exclude: [c.fingerprint] } });
    for (const member of [b, d]) expect(await member.next("broadcast")).toMatchObject({ from: a.fingerprint, namespace: ns, payload: { namespace: ns, data: { n: 1 } } });
    expect(await c.nothing("broadcast", 300)).toBe(true);
    expect(await a.nothing("broadcast", 0)).toBe(true);
    c.send("leave", { payload: { namespace: ns } });
    for (const member of [a, b, d]) expect(await member.next(isType("peer_left", c.fingerprint, ns))).toBeDefined();
    // After leaving, the room's traffic no longer reaches it on any node.
    b.send("broadcast", { payload: { namespace: ns, data: "after leave" } });
    for (const member of [a, d]) expect(await member.next("broadcast")).toMatchObject({ from: b.fingerprint, payload: { data: "after leave" } });
    expect(await c.nothing("broadcast", 300)).toBe(true);
  });

  it("nginx: /health and /readyz of the nodes pass through", async () => {
    expect(await getJson(`${nginx().http}/health`)).toMatchObject({ status: 200, body: { status: "ok", backends: { redis: "up" } } });
    expect(await getJson(`${nginx().http}/readyz`)).toMatchObject({ status: 200, body: { ready: true } });
  });

  it("nginx: raw-ws and polling-first Socket.IO peers from different addresses land on different nodes, see each other and signal", async () => {
    const front = nginx();
    // Find client addresses that nginx sends to each node.
    const addressOf = new Map<number, string>();
    for (let host = 2; host < 60 && addressOf.size < nodes.length; host++) {
      const address = `127.0.0.${host}`;
      const probe = await connectWs(front.ws, { localAddress: address });
      pool.open.push(probe);
      expect((await probe.register()).type).toBe("registered");
      const node = await nodeIndexOf(nodes, probe.fingerprint);
      if (!addressOf.has(node)) addressOf.set(node, address);
      probe.close();
    }
    expect([...addressOf.keys()].sort()).toEqual([0, 1]);
    const [onA, onC] = [addressOf.get(0) as string, addressOf.get(1) as string];

    const ns = unique(`nginx-${adapter}`);
    const raw = await connectWs(front.ws, { localAddress: onA });
    const polling = await connectSio(front.http, { transports: ["polling", "websocket"], localAddress: onC });
    const pollOnly = await connectSio(front.http, { transports: ["polling"], localAddress: onA });
    pool.open.push(raw, polling, pollOnly);
    for (const peer of [raw, polling, pollOnly]) expect((await peer.register()).type).toBe("registered");
    expect(await nodeIndexOf(nodes, raw.fingerprint)).toBe(0);
    expect(await nodeIndexOf(nodes, polling.fingerprint)).toBe(1);
    expect(await nodeIndexOf(nodes, pollOnly.fingerprint)).toBe(0);

    expect((await raw.join(ns)).payload?.["total"]).toBe(1);
    const list = await polling.join(ns);
    expect((list.payload?.["peers"] as { fingerprint: string }[]).map((peer) => peer.fingerprint)).toEqual([raw.fingerprint, polling.fingerprint]);
    expect(await raw.next(isType("peer_joined", polling.fingerprint, ns))).toMatchObject({ payload: { fingerprint: polling.fingerprint, alias: polling.alias } });
    await pollOnly.join(ns);
    expect((await discover(polling, ns)).total).toBe(3);

    raw.send("signal", { to: polling.fingerprint, payload: { signal_type: "offer", sdp: "through nginx" } });
    expect(await polling.next("signal")).toMatchObject({ from: raw.fingerprint, to: polling.fingerprint, payload: { signal_type: "offer", sdp: "through nginx" } });
    await upgraded(polling);
    polling.send("signal", { to: raw.alias, payload: { signal_type: "answer", sdp: "after upgrade" } });
    expect(await raw.next("signal")).toMatchObject({ from: polling.fingerprint, to: raw.fingerprint, payload: { signal_type: "answer" } });
    // A long-polling-only client on the other node hears a broadcast and a relay from across.
    polling.send("broadcast", { payload: { namespace: ns, data: "hi all", exclude: [raw.fingerprint] } });
    expect(await pollOnly.next("broadcast")).toMatchObject({ from: polling.fingerprint, payload: { data: "hi all" } });
    expect(await raw.nothing("broadcast", 300)).toBe(true);
    polling.send("relay", { to: pollOnly.fingerprint, payload: { move: "e4" } });
    expect(await pollOnly.next("relay")).toMatchObject({ from: polling.fingerprint, payload: { move: "e4" } });
    expect(pollOnly.socket.io.engine.transport.name).toBe("polling");
    // A peer leaving through nginx is seen leaving on the other node.
    polling.close();
    for (const member of [raw, pollOnly] as TestPeer[]) expect(await member.next(isType("peer_left", polling.fingerprint, ns))).toBeDefined();
  });
});
