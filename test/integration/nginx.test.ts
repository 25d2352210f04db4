import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DialectClient } from "../helpers/dialect-client.ts";
import { workers } from "../helpers/cluster.ts";
import { NginxFront, type NginxProcess } from "../helpers/nginx.ts";
import { closeAll, connectSio, connectWs, upgraded, type TestPeer } from "../helpers/peers.ts";
import { getJson, startServer, type ServerProcess } from "../helpers/server-process.ts";

/*
 * Real nginx (the Debian package) running the project's own template (nginx/templates, rendered by
 * nginx/render.ts for loopback addresses) in front of two real server processes with the local
 * broker. Peers that must see each other come from one client address, which the sticky upstream
 * sends to one node; cross-node delivery needs Redis and is tested elsewhere.
 */

let nodes: ServerProcess[] = [];
const proxy = new NginxFront();
const peers: TestPeer[] = [];

beforeAll(async () => {
  nodes = await Promise.all([startServer(), startServer()]);
  // A missing or failing nginx fails every test below with its message (never a skip).
  await proxy.start(nodes);
});
afterAll(async () => {
  closeAll(peers);
  await proxy.stop();
  await Promise.all(nodes.map((node) => node.stop()));
});

const nginx = (): NginxProcess => proxy.get();

/** Which node (index into `nodes`) holds a registered peer, asked of each node directly. */
async function nodeOf(peer: TestPeer): Promise<number> {
  const holders: number[] = [];
  for (const [index, node] of nodes.entries()) {
    if ((await workers(node)).some((worker) => worker.peers.includes(peer.fingerprint))) holders.push(index);
  }
  expect(holders, `nodes holding ${peer.fingerprint}`).toHaveLength(1);
  return holders[0] as number;
}

async function registered<T extends TestPeer>(connecting: Promise<T>): Promise<T> {
  const peer = await connecting;
  peers.push(peer);
  expect((await peer.register()).type).toBe("registered");
  return peer;
}

describe("nginx (project config) in front of two nodes", () => {
  it("passes GET /health through to a node", async () => {
    const { status, body } = await getJson(`${nginx().http}/health`);
    expect(status).toBe(200);
    expect(body).toMatchObject({ status: "ok", max_peers: 100_000 });
    expect(typeof body["timestamp"]).toBe("number");
  });

  it("carries raw /ws: register, join, ping, and peers on it see and signal each other", async () => {
    const a = await registered(connectWs(nginx().ws));
    const b = await registered(connectWs(nginx().ws));
    expect(await a.request("ping", {}, ["pong"])).toMatchObject({ type: "pong" });
    await a.join("nginx-ws");
    const list = await b.join("nginx-ws");
    expect(list.payload?.["total"]).toBe(2);
    expect(await a.next("peer_joined")).toMatchObject({ from: b.fingerprint, namespace: "nginx-ws" });
    a.send("signal", { to: b.fingerprint, payload: { signal_type: "offer", sdp: "v=0" } });
    expect(await b.next("signal")).toMatchObject({ from: a.fingerprint, to: b.fingerprint, payload: { signal_type: "offer", sdp: "v=0" } });
    expect(await nodeOf(a)).toBe(await nodeOf(b));
  });

  it("carries Socket.IO over WebSocket only, mixed with a raw-ws peer", async () => {
    const s = await registered(connectSio(nginx().http, { transports: ["websocket"] }));
    expect(s.socket.io.engine.transport.name).toBe("websocket");
    expect(await s.request("ping")).toMatchObject({ type: "pong" });
    await s.join("nginx-sio-ws");
    const w = await registered(connectWs(nginx().ws));
    await w.join("nginx-sio-ws");
    expect(await s.next("peer_joined")).toMatchObject({ from: w.fingerprint });
    w.send("signal", { to: s.alias, payload: { signal_type: "answer", sdp: "v=1" } });
    expect(await s.next("signal")).toMatchObject({ from: w.fingerprint, to: s.fingerprint });
  });

  it("connects polling-first Socket.IO clients several times in a row; each registers and upgrades to WebSocket", async () => {
    const seen = new Set<number>();
    for (let round = 0; round < 4; round++) {
      // The handshake is a long-polling request (the first listed transport); the upgrade request
      // carries the session id and fails unless it reaches the node that made the session.
      const p = await registered(connectSio(nginx().http, { transports: ["polling", "websocket"] }));
      const list = await p.join(`nginx-poll-${round}`);
      expect(list.payload?.["total"]).toBe(1);
      await upgraded(p);
      expect(await p.request("ping")).toMatchObject({ type: "pong" });
      seen.add(await nodeOf(p));
      p.close();
    }
    // One client address: its requests (polling included) all went to the same node.
    expect(seen.size).toBe(1);
  });

  it("keeps a long-polling-only session on its node across many requests and held polls", async () => {
    const p = await registered(connectSio(nginx().http, { transports: ["polling"] }));
    await p.join("nginx-poll-only");
    for (let i = 0; i < 10; i++) expect(await p.request("ping")).toMatchObject({ type: "pong" });
    const w = await registered(connectWs(nginx().ws));
    await w.join("nginx-poll-only");
    expect(await p.next("peer_joined")).toMatchObject({ from: w.fingerprint });
    w.send("broadcast", { payload: { namespace: "nginx-poll-only", data: { n: 1 } } });
    expect(await p.next("broadcast")).toMatchObject({ from: w.fingerprint, payload: { namespace: "nginx-poll-only", data: { n: 1 } } });
    expect(p.socket.io.engine.transport.name).toBe("polling");
  });

  it("routes by client address: addresses spread over both nodes, and each address always reaches the same node", async () => {
    const nodeByAddress = new Map<string, number>();
    for (let host = 2; host < 40; host++) {
      const address = `127.0.0.${host}`;
      const p = await registered(connectSio(nginx().http, { transports: ["polling", "websocket"], localAddress: address }));
      await upgraded(p);
      nodeByAddress.set(address, await nodeOf(p));
      p.close();
      if (nodeByAddress.size >= 6 && new Set(nodeByAddress.values()).size === 2) break;
    }
    expect(new Set(nodeByAddress.values())).toEqual(new Set([0, 1]));
    for (const [address, node] of nodeByAddress) {
      const again = await registered(connectSio(nginx().http, { transports: ["polling"], localAddress: address }));
      const raw = await registered(connectWs(nginx().ws, { localAddress: address }));
      expect({ address, polling: await nodeOf(again), ws: await nodeOf(raw) }).toEqual({ address, polling: node, ws: node });
      again.close();
      raw.close();
    }
  });

  it("carries a dialect: two PeerPigeon clients at /pigeon and /pigeon/ws discover each other and signal; its HTTP endpoint answers", async () => {
    const base = nginx().http.replace(/^http/, "ws");
    const [aId, bId] = [randomBytes(20).toString("hex"), randomBytes(20).toString("hex")];
    const a = await DialectClient.open(`${base}/pigeon?peerId=${aId}`);
    const b = await DialectClient.open(`${base}/pigeon/ws?peerId=${bId}`);
    try {
      await a.nextOfType("connected");
      await b.nextOfType("connected");
      // Whichever announce the server takes first, each learns of the other once.
      a.send({ type: "announce", data: { peerId: aId } });
      b.send({ type: "announce", data: { peerId: bId } });
      expect(await a.next((m) => m["type"] === "peer-discovered" && (m["data"] as Record<string, unknown>)["peerId"] === bId)).toMatchObject({ networkName: "global" });
      expect(await b.next((m) => m["type"] === "peer-discovered" && (m["data"] as Record<string, unknown>)["peerId"] === aId)).toMatchObject({ networkName: "global" });
      b.send({ type: "offer", targetPeerId: aId, data: { type: "offer", sdp: "v=0" } });
      expect(await a.nextOfType("offer")).toMatchObject({ fromPeerId: bId, targetPeerId: aId, data: { type: "offer", sdp: "v=0" } });
      const { status, body } = await getJson(`${nginx().http}/pigeon/health`);
      expect(status).toBe(200);
      expect(body).toMatchObject({ status: "healthy" });
    } finally {
      a.close();
      b.close();
    }
  });
});
