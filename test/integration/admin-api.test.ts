import { randomUUID } from "node:crypto";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { admin, pollingHandshakeStatus, upgradeStatus } from "../helpers/admin.ts";
import { workerOf, workers } from "../helpers/cluster.ts";
import { closeAll, connectSio, connectWs, sha256, type Envelope, type TestPeer, type Transport } from "../helpers/peers.ts";
import { PeerPool, deploymentWorkers, nodeIndexOf, startNodes } from "../helpers/redis-nodes.ts";
import { startRedisServer, type RedisServer } from "../helpers/redis-server.ts";
import { getJson, startServer, type ServerProcess } from "../helpers/server-process.ts";
import { waitFor } from "../helpers/wait.ts";

/**
 * The admin API on the admin listener, against real processes: a 2-worker cluster (the primary
 * forwards each request to a worker, which answers for the whole machine) and two nodes sharing
 * one Redis (each node's listener answers for the deployment). Peers connect from other loopback
 * addresses (127.0.0.2 and up: Linux routes all of 127.0.0.0/8 to the loopback) to be banned by
 * address.
 */

const TOKEN = "admin-s3cret";
const unique = (label: string): string => `${label}-${randomUUID().slice(0, 8)}`;

/** The error notice and the close of a connection the operator ended: 403 with close_code 4004, then close 4004 (ws). */
async function expectDisconnected(peer: TestPeer, message: string): Promise<void> {
  const notice = await peer.next((received) => received.type === "error" && received.payload?.["close_code"] === 4004);
  expect(notice.payload).toEqual({ code: 403, message, close_code: 4004 });
  const closed = await peer.closed;
  if (peer.transport === "ws") expect(closed.code).toBe(4004);
}

const isPeerLeft = (from: string, namespace: string) => (message: Envelope) => message.type === "peer_left" && message.from === from && message.namespace === namespace;

describe("admin API on a 2-worker cluster", () => {
  let server: ServerProcess;
  const open: TestPeer[] = [];
  const call = (method: string, path: string, body?: unknown) => admin(server, method, path, { token: TOKEN, body });

  beforeAll(async () => {
    // Short request deadlines: upgraded connections must outlive them (see the last test).
    server = await startServer({ config: { admin_token: TOKEN, header_timeout: "1s", read_timeout: "1s" }, env: { PEER_WORKERS: "2" }, timeoutMs: 30_000 });
  });
  afterEach(() => {
    closeAll(open.splice(0));
  });
  afterAll(async () => {
    await server?.stop();
  });

  const connect = async (transport: Transport, localAddress?: string): Promise<TestPeer> => {
    const peer = transport === "ws" ? await connectWs(server.ws, localAddress === undefined ? {} : { localAddress }) : await connectSio(server.http, localAddress === undefined ? {} : { localAddress });
    open.push(peer);
    return peer;
  };
  const registered = async (transport: Transport, options: { localAddress?: string; publicKey?: string; meta?: Record<string, unknown> } = {}): Promise<TestPeer> => {
    const peer = await connect(transport, options.localAddress);
    expect((await peer.register({ publicKey: options.publicKey, meta: options.meta })).type).toBe("registered");
    return peer;
  };
  /** A registered peer on the given worker: candidates that land elsewhere are closed. */
  const peerOn = async (transport: Transport, nodeId: string): Promise<TestPeer> => {
    for (let attempt = 0; attempt < 16; attempt++) {
      const candidate = await registered(transport);
      if ((await workerOf(server, candidate.fingerprint)) === nodeId) return candidate;
      candidate.close();
    }
    throw new Error(`could not place a ${transport} peer on ${nodeId}`);
  };

  it("admin_token guards every admin route; the public port has no /admin, and its /stats names no peer", async () => {
    for (const [method, path] of [
      ["GET", "/admin/namespaces"],
      ["GET", "/admin/bans"],
      ["POST", "/admin/bans"],
      ["DELETE", "/admin/bans/x"],
      ["GET", "/admin/stats?detail=peers"],
    ] as const) {
      expect((await admin(server, method, path)).status).toBe(401);
      expect((await admin(server, method, path, { token: "wrong" })).status).toBe(401);
    }
    const peer = await registered("ws");
    expect((await getJson(`${server.http}/admin/namespaces`)).status).toBe(404);
    const publicStats = await getJson(`${server.http}/stats?detail=peers`);
    expect(publicStats.status).toBe(200);
    for (const worker of publicStats.body["workers"] as Record<string, unknown>[]) expect(worker).not.toHaveProperty("peers");
    expect(JSON.stringify(publicStats.body)).not.toContain(peer.fingerprint);

    const stats = await call("GET", "/admin/stats?detail=peers");
    expect(stats.status).toBe(200);
    expect(Object.keys(stats.body).sort()).toEqual(Object.keys(publicStats.body).sort());
    const listed = stats.body["workers"] as { peers: string[] }[];
    expect(listed).toHaveLength(2);
    expect(listed.flatMap((worker) => worker.peers)).toContain(peer.fingerprint);
  });

  it("lists namespaces, pages a namespace's members and shows a room and a peer to the operator, across workers", async () => {
    const [w0, w1] = (await workers(server)).map((worker) => worker.node_id) as [string, string];
    const namespace = unique("lobby");
    const room = unique("room");
    const a = await peerOn("ws", w0);
    const b = await peerOn("sio", w1);
    const c = await peerOn("ws", w1);
    for (const peer of [a, b, c]) expect((await peer.join(namespace, { app_type: "game" })).type).toBe("peer_list");
    expect((await a.request("create_room", { payload: { room_id: room, max_size: 4 } }, ["room_created"])).type).toBe("room_created");
    expect((await b.request("join_room", { payload: { room_id: room } }, ["peer_list"])).type).toBe("peer_list");

    const namespaces = await call("GET", "/admin/namespaces");
    expect(namespaces.status).toBe(200);
    expect((namespaces.body["namespaces"] as Record<string, number>)[namespace]).toBe(3);
    expect((namespaces.body["namespaces"] as Record<string, number>)[room]).toBeUndefined();

    const first = await call("GET", `/admin/namespaces/${namespace}?limit=2`);
    expect(first.body).toMatchObject({ namespace, total: 3, offset: 0, limit: 2 });
    expect((first.body["members"] as { fingerprint: string }[]).map((member) => member.fingerprint)).toEqual([a.fingerprint, b.fingerprint]);
    const rest = await call("GET", `/admin/namespaces/${namespace}?limit=2&offset=2`);
    expect(rest.body["members"]).toEqual([{ fingerprint: c.fingerprint, alias: c.alias, app_type: "game", meta: {}, verified: false }]);

    const shown = await call("GET", `/admin/rooms/${encodeURIComponent(room)}`);
    expect(shown.body).toMatchObject({ room_id: room, owner: a.fingerprint, max_size: 4, peer_count: 2, total: 2 });
    expect((shown.body["members"] as { fingerprint: string }[]).map((member) => member.fingerprint)).toEqual([a.fingerprint, b.fingerprint]);

    const described = await call("GET", `/admin/peers/${b.fingerprint}`);
    expect(described.body).toMatchObject({ fingerprint: b.fingerprint, alias: b.alias, node_id: w1, meta: {}, verified: false });
    expect(described.body["scopes"]).toEqual(
      [
        { name: namespace, room: false, app_type: "game" },
        { name: room, room: true, app_type: "" },
      ].sort((x, y) => (x.name < y.name ? -1 : 1)),
    );

    expect((await call("GET", `/admin/namespaces/${unique("nowhere")}`)).status).toBe(404);
    expect((await call("GET", `/admin/namespaces/${room}`)).status).toBe(404);
    expect((await call("GET", `/admin/rooms/${namespace}`)).status).toBe(404);
    expect((await call("GET", `/admin/peers/${sha256("nobody")}`)).status).toBe(404);
    expect((await call("GET", `/admin/namespaces/${namespace}?limit=0`)).status).toBe(400);
    expect((await call("GET", "/admin/nothing")).status).toBe(404);
    const wrongMethod = await call("POST", "/admin/namespaces");
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get("allow")).toBe("GET");
  });

  it("disconnects a peer wherever it is: error 403 with close_code 4004, then close 4004; its namespace is told; 404 when not registered", async () => {
    const [w0] = (await workers(server)).map((worker) => worker.node_id) as [string, string];
    const namespace = unique("ns");
    // Two targets on one worker: the primary hands consecutive requests to the two workers in
    // turn, so one of the two disconnects is answered by the other worker.
    const ws = await peerOn("ws", w0);
    const sio = await peerOn("sio", w0);
    const watcher = await registered("ws");
    for (const peer of [ws, sio, watcher]) await peer.join(namespace);

    const first = await call("POST", `/admin/peers/${ws.fingerprint}/disconnect`, { reason: "flooding the lobby" });
    expect(first).toMatchObject({ status: 200, body: { fingerprint: ws.fingerprint, alias: ws.alias, node_id: w0, disconnected: true } });
    const second = await call("POST", `/admin/peers/${sio.fingerprint}/disconnect`);
    expect(second.status).toBe(200);
    await expectDisconnected(ws, "flooding the lobby");
    await expectDisconnected(sio, "disconnected by the operator");
    for (const gone of [ws, sio]) expect(await watcher.next(isPeerLeft(gone.fingerprint, namespace))).toBeDefined();
    await waitFor(() => call("GET", `/admin/peers/${ws.fingerprint}`), (reply) => reply.status === 404, { timeoutMs: 5_000, what: "the peer gone" });
    expect((await call("POST", `/admin/peers/${ws.fingerprint}/disconnect`)).status).toBe(404);
    expect((await call("POST", `/admin/peers/${watcher.fingerprint}/disconnect`, { reason: 7 })).status).toBe(400);
  });

  it("a fingerprint ban closes its live peer and refuses its register on every worker (403) until lifted", async () => {
    const publicKey = `key-${randomUUID()}`;
    const fingerprint = sha256(publicKey);
    const live = await registered("ws", { publicKey });

    const made = await call("POST", "/admin/bans", { fingerprint, duration: "10m", reason: "abuse" });
    expect(made.status).toBe(201);
    expect(made.body).toMatchObject({ fingerprint, reason: "abuse", disconnected: 1 });
    expect(typeof made.body["id"]).toBe("string");
    await expectDisconnected(live, "banned");
    expect((await call("GET", "/admin/bans")).body["bans"]).toContainEqual(expect.objectContaining({ id: made.body["id"], fingerprint }));

    // New connections go to the worker holding fewest (as its last report counts them, so earlier
    // tests' closes may not show yet): connect until both workers have had some, both transports.
    const homes = new Set<string>();
    for (let attempt = 0; attempt < 12 && (attempt < 4 || homes.size < 2); attempt++) {
      const peer = await connect(attempt % 2 === 0 ? "ws" : "sio");
      const reply = await peer.register({ publicKey });
      expect(reply.type).toBe("error");
      expect(reply.payload).toMatchObject({ code: 403, message: "banned" });
      // The connection stays; it may register another key, which tells where it is.
      expect((await peer.register()).type).toBe("registered");
      homes.add((await workerOf(server, peer.fingerprint)) ?? "?");
    }
    expect(homes.size).toBe(2);

    expect((await call("DELETE", `/admin/bans/${String(made.body["id"])}`)).status).toBe(204);
    expect((await call("DELETE", `/admin/bans/${String(made.body["id"])}`)).status).toBe(404);
    for (const transport of ["ws", "sio"] as const) {
      const peer = await connect(transport);
      expect((await peer.register({ publicKey })).type).toBe("registered");
      peer.close();
      await peer.closed;
    }
  });

  it("an IP ban closes that address's connections and refuses new ones with HTTP 403 on every path and worker, until lifted", async () => {
    const banned = "127.0.0.2";
    const liveWs = await registered("ws", { localAddress: banned });
    const liveSio = await registered("sio", { localAddress: banned });
    const unregistered = await connect("ws", banned);
    const bystander = await registered("ws", { localAddress: "127.0.0.1" });

    const made = await call("POST", "/admin/bans", { ip: banned, duration: "10m" });
    expect(made).toMatchObject({ status: 201, body: { ip: banned, disconnected: 3 } });
    for (const peer of [liveWs, liveSio, unregistered]) await expectDisconnected(peer, "banned");
    expect((await bystander.request("ping", {}, ["pong"])).type).toBe("pong");

    const host = server.ws.replace(/\/ws$/, "");
    // Several tries: the router spreads connections over both workers.
    for (let attempt = 0; attempt < 4; attempt++) {
      expect(await upgradeStatus(server.ws, banned)).toBe(403);
      expect(await pollingHandshakeStatus(server.http, banned)).toBe(403);
    }
    expect(await upgradeStatus(`${host}/socket.io/?EIO=4&transport=websocket`, banned)).toBe(403);
    expect(await upgradeStatus(`${host}/p2p/ws`, banned)).toBe(403);
    expect(await upgradeStatus(`${host}/pigeon?peerId=${"a".repeat(40)}`, banned)).toBe(403);
    expect(await upgradeStatus(`${host}/randomchat/ws`, banned)).toBe(403);
    expect(await upgradeStatus(server.ws, "127.0.0.1")).toBe("open");
    expect(await upgradeStatus(server.ws, "127.0.0.9")).toBe("open");

    expect((await call("DELETE", `/admin/bans/${String(made.body["id"])}`)).status).toBe(204);
    for (let attempt = 0; attempt < 4; attempt++) expect(await upgradeStatus(server.ws, banned)).toBe("open");
    expect(await pollingHandshakeStatus(server.http, banned)).toBe(200);
    expect((await registered("sio", { localAddress: banned })).fingerprint).not.toBe("");
  });

  it("a ban ends at its expiry without being lifted", async () => {
    const banned = "127.0.0.4";
    const made = await call("POST", "/admin/bans", { ip: banned, duration: "2s" });
    expect(made.status).toBe(201);
    expect(await upgradeStatus(server.ws, banned)).toBe(403);
    await waitFor(() => upgradeStatus(server.ws, banned), (status) => status === "open", { timeoutMs: 5_000, intervalMs: 200, what: "the ban to expire" });
    expect(Date.now()).toBeGreaterThanOrEqual(Date.parse(String(made.body["expires_at"])));
    expect((await call("GET", "/admin/bans")).body["bans"]).not.toContainEqual(expect.objectContaining({ id: made.body["id"] }));
    expect((await call("DELETE", `/admin/bans/${String(made.body["id"])}`)).status).toBe(404);
  });

  it("upgraded connections of every path outlive the request deadlines (the upgrade dispatcher ends them)", async () => {
    const peers = [await registered("ws"), await registered("sio"), await registered("ws"), await registered("sio")];
    const dialect = await connectWs(server.ws.replace(/\/ws$/, "/p2p/ws"));
    open.push(dialect);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    for (const peer of peers) expect((await peer.request("ping", {}, ["pong"])).type).toBe("pong");
    expect(dialect.socket.readyState).toBe(WebSocket.OPEN);
  });

  it("refuses bad ban requests with 400 and a message", async () => {
    for (const body of [{ ip: "not-an-address", duration: "1m" }, { fingerprint: "abc" }, { fingerprint: "abc", ip: "127.0.0.9", duration: "1m" }, "not json"]) {
      const reply = await call("POST", "/admin/bans", body);
      expect(reply.status).toBe(400);
      expect(typeof reply.body.error).toBe("string");
    }
  });
});

describe("admin API across two nodes on Redis", () => {
  let redis: RedisServer;
  let nodes: ServerProcess[] = [];
  const pool = new PeerPool();

  beforeAll(async () => {
    redis = await startRedisServer();
    nodes = await startNodes(redis, [{}, {}]);
  });
  afterEach(() => {
    pool.closeAll();
    pool.open.length = 0;
  });
  afterAll(async () => {
    pool.closeAll();
    await Promise.all(nodes.map((node) => node.stop()));
    await redis?.stop();
  });

  const node = (index: number): ServerProcess => nodes[index] as ServerProcess;
  const call = (index: number, method: string, path: string, body?: unknown) => admin(node(index), method, path, { body });

  it("each node's admin API answers for the whole deployment: namespaces, members, peers", async () => {
    const namespace = unique("lobby");
    const a = await pool.on(node(0), "ws", { namespace, meta: { seat: 1 } });
    const b = await pool.on(node(1), "sio", { namespace });
    for (const index of [0, 1]) {
      expect(((await call(index, "GET", "/admin/namespaces")).body["namespaces"] as Record<string, number>)[namespace]).toBe(2);
      const members = await call(index, "GET", `/admin/namespaces/${namespace}`);
      expect((members.body["members"] as { fingerprint: string }[]).map((member) => member.fingerprint)).toEqual([a.fingerprint, b.fingerprint]);
    }
    const workersSeen = await deploymentWorkers(node(1));
    const nodeOfA = workersSeen.find((worker) => worker.peers.includes(a.fingerprint))?.node_id;
    expect((await call(1, "GET", `/admin/peers/${a.fingerprint}`)).body).toMatchObject({ fingerprint: a.fingerprint, node_id: nodeOfA, meta: { seat: 1 } });
    expect(await nodeIndexOf(nodes, a.fingerprint, node(1))).toBe(0);
  });

  it("disconnects a peer connected to another node", async () => {
    const namespace = unique("ns");
    const target = await pool.on(node(1), "ws", { namespace });
    const watcher = await pool.on(node(0), "sio", { namespace });
    expect((await call(0, "POST", `/admin/peers/${target.fingerprint}/disconnect`, { reason: "bye" })).status).toBe(200);
    await expectDisconnected(target, "bye");
    expect(await watcher.next(isPeerLeft(target.fingerprint, namespace))).toBeDefined();
    await waitFor(() => call(0, "GET", `/admin/peers/${target.fingerprint}`), (reply) => reply.status === 404, { timeoutMs: 5_000, what: "the peer gone" });
  });

  it("a fingerprint ban made on one node closes its peer on the other and refuses its register on both, until lifted on either", async () => {
    const publicKey = `key-${randomUUID()}`;
    const live = await pool.on(node(0), "ws", { publicKey });
    const made = await call(1, "POST", "/admin/bans", { fingerprint: live.fingerprint, duration: "10m" });
    expect(made).toMatchObject({ status: 201, body: { disconnected: 1 } });
    await expectDisconnected(live, "banned");
    for (const index of [0, 1]) {
      const peer = await pool.connect(node(index), "ws");
      expect((await peer.register({ publicKey })).payload).toMatchObject({ code: 403, message: "banned" });
      expect((await call(index, "GET", "/admin/bans")).body["bans"]).toContainEqual(expect.objectContaining({ id: made.body["id"] }));
    }
    expect((await call(0, "DELETE", `/admin/bans/${String(made.body["id"])}`)).status).toBe(204);
    for (const index of [0, 1]) {
      const peer = await pool.connect(node(index), "sio");
      expect((await peer.register({ publicKey })).type).toBe("registered");
      peer.close();
      await peer.closed;
    }
  });

  it("an IP ban made on one node refuses that address on the other (403) and closes its connections there; lifted, or expired, it lets them in", async () => {
    const banned = "127.0.0.5";
    const live = await connectWs(node(1).ws, { localAddress: banned });
    pool.open.push(live);
    expect((await live.register()).type).toBe("registered");
    const made = await call(0, "POST", "/admin/bans", { ip: banned, duration: "10m" });
    expect(made).toMatchObject({ status: 201, body: { ip: banned, disconnected: 1 } });
    await expectDisconnected(live, "banned");
    for (const index of [0, 1]) {
      expect(await upgradeStatus(node(index).ws, banned)).toBe(403);
      expect(await pollingHandshakeStatus(node(index).http, banned)).toBe(403);
      expect(await upgradeStatus(node(index).ws, "127.0.0.1")).toBe("open");
    }
    expect((await call(1, "DELETE", `/admin/bans/${String(made.body["id"])}`)).status).toBe(204);
    for (const index of [0, 1]) expect(await upgradeStatus(node(index).ws, banned)).toBe("open");

    expect((await call(1, "POST", "/admin/bans", { ip: banned, duration: "2s" })).status).toBe(201);
    expect(await upgradeStatus(node(0).ws, banned)).toBe(403);
    for (const index of [0, 1]) {
      await waitFor(() => upgradeStatus(node(index).ws, banned), (status) => status === "open", { timeoutMs: 5_000, intervalMs: 200, what: "the ban to expire" });
    }
  });
});

describe("admin API of a single process", () => {
  let server: ServerProcess;
  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it("serves the same API without a token when none is set", async () => {
    const peer = await connectWs(server.ws, { localAddress: "127.0.0.6" });
    expect((await peer.register()).type).toBe("registered");
    expect((await admin(server, "GET", `/admin/peers/${peer.fingerprint}`)).body).toMatchObject({ fingerprint: peer.fingerprint });
    const made = await admin(server, "POST", "/admin/bans", { body: { ip: "127.0.0.6", duration: "1m" } });
    expect(made).toMatchObject({ status: 201, body: { disconnected: 1 } });
    await expectDisconnected(peer, "banned");
    expect(await upgradeStatus(server.ws, "127.0.0.6")).toBe(403);
    expect((await admin(server, "DELETE", `/admin/bans/${String(made.body["id"])}`)).status).toBe(204);
    expect(await upgradeStatus(server.ws, "127.0.0.6")).toBe("open");
  });
});
