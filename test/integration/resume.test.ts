import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { workers } from "../helpers/cluster.ts";
import { makeKey } from "../helpers/key-proof.ts";
import { WsPeer, type Envelope, type TestPeer, type Transport } from "../helpers/peers.ts";
import { PeerPool, settled, startNode, startNodes, unique } from "../helpers/redis-nodes.ts";
import { startRedisServer, type RedisServer } from "../helpers/redis-server.ts";
import { startServer, type ServerProcess } from "../helpers/server-process.ts";
import { waitFor } from "../helpers/wait.ts";

/**
 * Session resume, over /ws and Socket.IO, in one process, a 2-worker cluster and 2 Redis nodes: a
 * peer whose connection drops stays registered and in its namespaces and rooms for resume_grace;
 * a `register` with its resume_token resumes it (on another node where there is one) with what was
 * sent to it meanwhile; after the grace, with another token, or after a takeover it departs as a
 * closed peer always did. Also: a close for cause departs at once, a proven peer resumes only with
 * a proof, and a Redis node stopped with SIGTERM leaves its peers to resume on another node.
 */

/** The grace of the deployments whose tests must see it run out. */
const SHORT_GRACE_MS = 1_500;

interface Deployment {
  /** Where peers first connect. */
  readonly first: ServerProcess;
  /** Where a dropped peer comes back: another node where there is one. */
  readonly second: ServerProcess;
  stop(): Promise<void>;
}

interface Topology {
  name: string;
  start(config: Record<string, unknown>): Promise<Deployment>;
}

const TOPOLOGIES: Topology[] = [
  {
    name: "one process",
    async start(config) {
      const server = await startServer({ config });
      return { first: server, second: server, stop: async () => void (await server.stop()) };
    },
  },
  {
    name: "a cluster of 2 workers",
    async start(config) {
      const server = await startServer({ config, env: { PEER_WORKERS: "2" } });
      return { first: server, second: server, stop: async () => void (await server.stop()) };
    },
  },
  {
    name: "2 Redis nodes",
    async start(config) {
      const redis = await startRedisServer();
      const [first, second] = (await startNodes(redis, [{ config }, { config }])) as [ServerProcess, ServerProcess];
      return {
        first,
        second,
        stop: async () => {
          await Promise.all([first.stop(), second.stop()]);
          await redis.stop();
        },
      };
    },
  },
];

const pool = new PeerPool();
afterAll(() => pool.closeAll());

/** Connects to `server` and registers, with a resume token when given; returns the peer and its `registered` (or error). */
async function registerOn(
  server: ServerProcess,
  transport: Transport,
  options: { publicKey?: string; resumeToken?: string } = {},
): Promise<{ peer: TestPeer; reply: Envelope }> {
  const peer = await pool.connect(server, transport);
  const publicKey = options.publicKey ?? unique("key");
  const payload = options.resumeToken === undefined ? { public_key: publicKey } : { public_key: publicKey, resume_token: options.resumeToken };
  const reply = await peer.request("register", { payload }, ["registered"]);
  if (reply.type === "registered") {
    peer.publicKey = publicKey;
    peer.fingerprint = String(reply.payload?.["fingerprint"]);
    peer.alias = String(reply.payload?.["alias"]);
  }
  return { peer, reply };
}

const tokenOf = (reply: Envelope): string => {
  const token = reply.payload?.["resume_token"];
  expect(typeof token, JSON.stringify(reply)).toBe("string");
  return token as string;
};

/**
 * Closes the peer's connection from the client's side and waits until the deployment no longer
 * counts it as connected anywhere, and a moment more for its suspension to reach the state store.
 */
async function drop(peer: TestPeer, deployment: ServerProcess): Promise<void> {
  peer.drop();
  await peer.closed;
  await waitFor(
    () => workers(deployment),
    (all) => all.every((worker) => !worker.peers.includes(peer.fingerprint)),
    { timeoutMs: 5_000, what: "the dropped peer's connection to be gone" },
  );
  await new Promise((resolve) => setTimeout(resolve, 150));
}

const peerLeft = (fingerprint: string) => (message: Envelope) => message.type === "peer_left" && message.from === fingerprint;

/** A room owned by `owner`, joined by `members`. */
async function roomWith(owner: TestPeer, ...members: TestPeer[]): Promise<string> {
  const room = unique("room");
  expect((await owner.request("create_room", { payload: { room_id: room } }, ["room_created"])).type).toBe("room_created");
  for (const member of members) expect((await member.request("join_room", { payload: { room_id: room } }, ["peer_list"])).type).toBe("peer_list");
  return room;
}

describe.each(TOPOLOGIES)("session resume: $name", (topology) => {
  let main: Deployment;
  let short: Deployment;

  beforeAll(async () => {
    main = await topology.start({});
    short = await topology.start({ resume_grace: SHORT_GRACE_MS });
  }, 90_000);
  afterAll(async () => {
    await main?.stop();
    await short?.stop();
  });

  it.each<Transport>(["ws", "sio"])(
    "within the grace (%s): nobody hears peer_left, what was sent meanwhile follows `registered`, every membership stays",
    async (transport) => {
      const ns = unique("ns");
      const partner = await pool.on(main.first, "ws", { namespace: ns });
      const { peer: x, reply: first } = await registerOn(main.first, transport);
      expect(first.payload).toMatchObject({ resumed: false });
      const token = tokenOf(first);
      expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
      await x.join(ns);
      const room = await roomWith(partner, x);

      await drop(x, main.first);
      partner.send("signal", { to: x.fingerprint, payload: { signal_type: "offer", sdp: "v=0 gap" } });
      partner.send("relay", { to: x.alias, payload: { n: 2 } });
      await settled(partner);
      expect(await partner.nothing(peerLeft(x.fingerprint), 300)).toBe(true);

      const { peer: back, reply } = await registerOn(main.second, transport, { publicKey: x.publicKey, resumeToken: token });
      expect(reply).toMatchObject({
        type: "registered",
        payload: { fingerprint: x.fingerprint, alias: x.alias, verified: false, resume_token: token, resumed: true, missed: 0 },
      });
      // Nothing came before `registered`; the gap's messages follow it, in order.
      expect(await back.next("signal")).toMatchObject({ from: partner.fingerprint, to: x.fingerprint, payload: { signal_type: "offer", sdp: "v=0 gap" } });
      expect(await back.next("relay")).toMatchObject({ from: partner.fingerprint, to: x.fingerprint, payload: { n: 2 } });
      expect(back.arrivals.map((message) => message.type)).toEqual(["registered", "signal", "relay"]);

      // Still in the namespace and the room: broadcasts reach it, it reaches its partner.
      partner.send("broadcast", { payload: { namespace: ns, data: { after: "resume" } } });
      expect(await back.next("broadcast")).toMatchObject({ from: partner.fingerprint, namespace: ns, payload: { data: { after: "resume" } } });
      partner.send("broadcast", { payload: { namespace: room, data: { in: "room" } } });
      expect(await back.next("broadcast")).toMatchObject({ namespace: room });
      back.send("signal", { to: partner.fingerprint, payload: { signal_type: "answer" } });
      expect(await partner.next("signal")).toMatchObject({ from: x.fingerprint, payload: { signal_type: "answer" } });
      const list = await back.request("discover", { payload: { namespace: ns } }, ["peer_list"]);
      expect(list.payload?.["total"]).toBe(2);
      expect(await partner.nothing(peerLeft(x.fingerprint), 200)).toBe(true);
    },
  );

  it("a wrong token registers afresh: the suspended registration departs with one peer_left", async () => {
    const ns = unique("ns");
    const partner = await pool.on(main.first, "sio", { namespace: ns });
    const { peer: x, reply: first } = await registerOn(main.first, "ws");
    const token = tokenOf(first);
    await x.join(ns);
    await drop(x, main.first);

    const { reply } = await registerOn(main.second, "ws", { publicKey: x.publicKey, resumeToken: "A".repeat(43) });
    expect(reply).toMatchObject({ type: "registered", payload: { fingerprint: x.fingerprint, resumed: false } });
    expect(reply.payload).not.toHaveProperty("missed");
    expect(tokenOf(reply)).not.toBe(token);
    expect(await partner.next(peerLeft(x.fingerprint))).toMatchObject({ namespace: ns });
    expect(await partner.nothing(peerLeft(x.fingerprint), 300)).toBe(true);
    expect((await partner.request("discover", { payload: { namespace: ns } }, ["peer_list"])).payload?.["total"]).toBe(1);
  });

  it("past resume_buffer the oldest are dropped: `missed` counts them and the newest 64 arrive in order", async () => {
    const ns = unique("ns");
    const partner = await pool.on(main.first, "ws", { namespace: ns });
    const { peer: x, reply: first } = await registerOn(main.first, "ws");
    await x.join(ns);
    await drop(x, main.first);
    for (let seq = 0; seq < 70; seq++) partner.send("relay", { to: x.fingerprint, payload: { seq } });
    await settled(partner);

    const { peer: back, reply } = await registerOn(main.second, "sio", { publicKey: x.publicKey, resumeToken: tokenOf(first) });
    expect(reply.payload).toMatchObject({ resumed: true, missed: 6 });
    const seqs: unknown[] = [];
    for (let i = 0; i < 64; i++) seqs.push((await back.next("relay")).payload?.["seq"]);
    expect(seqs).toEqual(Array.from({ length: 64 }, (_, i) => i + 6));
    expect(await back.nothing("relay", 200)).toBe(true);
  });

  it("a register without the token during the grace takes over: the suspended one departs once and its token is spent", async () => {
    const ns = unique("ns");
    const partner = await pool.on(main.first, "ws", { namespace: ns });
    const { peer: x, reply: first } = await registerOn(main.first, "sio");
    const token = tokenOf(first);
    await x.join(ns);
    await drop(x, main.first);

    const { reply } = await registerOn(main.second, "ws", { publicKey: x.publicKey });
    expect(reply).toMatchObject({ type: "registered", payload: { fingerprint: x.fingerprint, resumed: false } });
    expect(await partner.next(peerLeft(x.fingerprint))).toMatchObject({ namespace: ns });
    expect(await partner.nothing(peerLeft(x.fingerprint), 300)).toBe(true);
    const late = await registerOn(main.first, "ws", { publicKey: x.publicKey, resumeToken: token });
    expect(late.reply.payload).toMatchObject({ resumed: false });
  });

  it("resuming over a live connection replaces it (4001) and keeps its memberships: no peer_left", async () => {
    const ns = unique("ns");
    const partner = await pool.on(main.first, "ws", { namespace: ns });
    const { peer: x, reply: first } = await registerOn(main.first, "ws");
    await x.join(ns);
    const { peer: back, reply } = await registerOn(main.second, "sio", { publicKey: x.publicKey, resumeToken: tokenOf(first) });
    expect(reply.payload).toMatchObject({ resumed: true, missed: 0 });
    expect(await x.next("error")).toMatchObject({ payload: { code: 409, close_code: 4001 } });
    expect((await x.closed).code).toBe(4001);
    partner.send("broadcast", { payload: { namespace: ns, data: 1 } });
    expect(await back.next("broadcast")).toMatchObject({ namespace: ns });
    expect(await partner.nothing(peerLeft(x.fingerprint), 300)).toBe(true);
  });

  it("a peer the server closes for cause (1009) departs at once", async () => {
    const ns = unique("ns");
    const partner = await pool.on(main.first, "ws", { namespace: ns });
    const x = await pool.on(main.first, "ws", { namespace: ns });
    x.send("relay", { to: partner.fingerprint, payload: { big: "x".repeat(70_000) } });
    expect((await x.closed).code).toBe(1009);
    expect(await partner.next(peerLeft(x.fingerprint), 2_000)).toMatchObject({ namespace: ns });
  });

  it.each<Transport>(["ws", "sio"])("a client that says goodbye (%s: close 1000, or the disconnect packet) departs at once", async (transport) => {
    const ns = unique("ns");
    const partner = await pool.on(main.first, "ws", { namespace: ns });
    const x = await pool.on(main.first, transport, { namespace: ns });
    if (x instanceof WsPeer) x.socket.close(1000);
    else x.close();
    expect(await partner.next(peerLeft(x.fingerprint), 2_000)).toMatchObject({ namespace: ns });
  });

  it("after the grace the peer departs (peer_left once, its rooms passed on) and its token registers afresh", async () => {
    const ns = unique("ns");
    const partner = await pool.on(short.first, "ws", { namespace: ns });
    const { peer: x, reply: first } = await registerOn(short.first, "ws");
    await x.join(ns);
    const room = await roomWith(x, partner);
    const droppedAt = Date.now();
    x.drop();
    const left = await partner.next(peerLeft(x.fingerprint), SHORT_GRACE_MS + 8_000);
    expect(Date.now() - droppedAt).toBeGreaterThanOrEqual(SHORT_GRACE_MS - 100);
    const second = await partner.next(peerLeft(x.fingerprint), 2_000);
    expect([left.namespace, second.namespace].sort()).toEqual([ns, room].sort());
    expect(await partner.nothing(peerLeft(x.fingerprint), 300)).toBe(true);
    expect((await partner.request("room_info", { payload: { room_id: room } }, ["room_info"])).payload).toMatchObject({ owner: partner.fingerprint, peer_count: 1 });

    const { reply } = await registerOn(short.second, "sio", { publicKey: x.publicKey, resumeToken: tokenOf(first) });
    expect(reply.payload).toMatchObject({ fingerprint: x.fingerprint, resumed: false });
    expect((await partner.request("discover", { payload: { namespace: ns } }, ["peer_list"])).payload?.["total"]).toBe(1);
  });
});

describe("session resume and proof of key possession (one process, key_proof optional)", () => {
  let server: ServerProcess;
  beforeAll(async () => {
    server = await startServer({ config: { key_proof: "optional" } });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it("a proven peer resumes only with a proof, as a takeover would need one; a refused resume leaves it suspended", async () => {
    const key = await makeKey("ed25519-raw");
    const ns = unique("ns");
    const partner = await pool.on(server, "ws", { namespace: ns });
    const signedRegister = async (peer: TestPeer, resumeToken?: string): Promise<Envelope> => {
      const challenge = await peer.request("challenge", {}, ["challenge"]);
      const signature = await key.sign(String(challenge.payload?.["nonce"]));
      const payload = { public_key: key.publicKey, signature, ...(resumeToken === undefined ? {} : { resume_token: resumeToken }) };
      return peer.request("register", { payload }, ["registered"]);
    };
    const x = await pool.connect(server, "ws");
    const first = await signedRegister(x);
    expect(first.payload).toMatchObject({ verified: true, resumed: false });
    x.fingerprint = String(first.payload?.["fingerprint"]);
    await x.join(ns);
    await drop(x, server);

    const unsigned = await registerOn(server, "ws", { publicKey: key.publicKey, resumeToken: tokenOf(first) });
    expect(unsigned.reply).toMatchObject({ type: "error", payload: { code: 409, ref: "register" } });
    expect(await partner.nothing(peerLeft(x.fingerprint), 300)).toBe(true);

    const back = await pool.connect(server, "ws");
    expect(await signedRegister(back, tokenOf(first))).toMatchObject({ type: "registered", payload: { verified: true, resumed: true, missed: 0 } });
    partner.send("broadcast", { payload: { namespace: ns, data: "proven" } });
    expect(await back.next("broadcast")).toMatchObject({ namespace: ns });
  });
});

describe("session resume across a rolling restart (Redis nodes)", () => {
  let redis: RedisServer;
  let stays: ServerProcess;
  let goes: ServerProcess;
  beforeAll(async () => {
    redis = await startRedisServer();
    [stays, goes] = (await startNodes(redis, [{}, {}])) as [ServerProcess, ServerProcess];
  }, 60_000);
  afterAll(async () => {
    await Promise.all([stays?.stop(), goes?.stop()]);
    await redis?.stop();
  });

  it.each<Transport>(["ws", "sio"])("a node stopped with SIGTERM suspends its peers (1001): they resume on another node (%s)", async (transport) => {
    if (goes.process.exitCode !== null) goes = await startNode(redis);
    const ns = unique("ns");
    const partner = await pool.on(stays, "ws", { namespace: ns });
    const { peer: x, reply: first } = await registerOn(goes, transport);
    await x.join(ns);
    const room = await roomWith(partner, x);

    expect(await goes.stop("SIGTERM")).toBe(0);
    const closed = await x.closed;
    if (transport === "ws") expect(closed.code).toBe(1001);
    partner.send("signal", { to: x.fingerprint, payload: { during: "restart" } });
    await settled(partner);
    expect(await partner.nothing(peerLeft(x.fingerprint), 300)).toBe(true);

    const { peer: back, reply } = await registerOn(stays, transport, { publicKey: x.publicKey, resumeToken: tokenOf(first) });
    expect(reply.payload).toMatchObject({ fingerprint: x.fingerprint, resumed: true, missed: 0 });
    expect(await back.next("signal")).toMatchObject({ from: partner.fingerprint, payload: { during: "restart" } });
    partner.send("broadcast", { payload: { namespace: room, data: "still here" } });
    expect(await back.next("broadcast")).toMatchObject({ namespace: room });
    expect(await partner.nothing(peerLeft(x.fingerprint), 200)).toBe(true);
  });
});
