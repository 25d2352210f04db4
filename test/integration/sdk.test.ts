import { randomUUID } from "node:crypto";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Identity, PeerError, type PeerList } from "../../client/src/index.ts";
import { sha256 } from "../helpers/peers.ts";
import { nodeIndexOf, startNodes } from "../helpers/redis-nodes.ts";
import { startRedisServer, type RedisServer } from "../helpers/redis-server.ts";
import { SDK_TRANSPORTS, SdkPool, type RecordedClient, type SdkTransport } from "../helpers/sdk-clients.ts";
import { startServer, type ServerProcess } from "../helpers/server-process.ts";
import { startTcpProxy, type TcpProxy } from "../helpers/tcp-proxy.ts";
import { waitFor } from "../helpers/wait.ts";

/**
 * The client SDK (client/src) in Node against real servers, over raw /ws and Socket.IO: every
 * request's promise, the events, the proof of key possession, and reconnection after the test cuts
 * the client's TCP connection (through a relay it controls): resumed on the same server, resumed on
 * another Redis node, and joined again when the server does not resume.
 */

const unique = (label: string): string => `${label}-${randomUUID().slice(0, 8)}`;
const fingerprints = (list: PeerList): string[] => list.peers.map((peer) => peer.fingerprint);

const pool = new SdkPool();
const proxies: TcpProxy[] = [];
afterEach(async () => {
  pool.closeAll();
  await Promise.all(proxies.splice(0).map((proxy) => proxy.close()));
});

async function proxyTo(port: number): Promise<TcpProxy> {
  const proxy = await startTcpProxy(port);
  proxies.push(proxy);
  return proxy;
}

/** Waits until `client` has noticed that its connection is gone. */
const reconnecting = (client: RecordedClient): Promise<unknown> =>
  waitFor(() => client.client.state, (state) => state === "reconnecting", { timeoutMs: 5_000, what: "the client to notice the cut" });

describe("SDK against one server", () => {
  let server: ServerProcess;
  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(async () => {
    await server.stop();
  });

  describe.each(SDK_TRANSPORTS)("over %s", (transport: SdkTransport) => {
    it("registers its WebCrypto P-256 key with a proof of possession: verified, fingerprint = SHA-256 of the public key", async () => {
      const identity = await Identity.generate();
      expect(identity.keyPair.privateKey.extractable).toBe(false);
      expect(Buffer.from(identity.publicKey, "base64")).toHaveLength(65);
      const peer = await pool.registered(server.http, transport, { identity });
      const registration = await peer.next("registered");
      expect(registration).toMatchObject({ fingerprint: sha256(identity.publicKey), verified: true });
      expect(peer.client.verified).toBe(true);
      expect(peer.client.state).toBe("open");

      const unsigned = await pool.registered(server.http, transport, { keyProof: false });
      expect(unsigned.client.verified).toBe(false);
    });

    it("every request resolves with its answer, and what others send arrives as typed events", async () => {
      const [a, b] = [await pool.registered(server.http, transport), await pool.registered(server.http, transport, { alias: unique("bee").slice(0, 20) })];
      const namespace = unique("ns");

      const first = await a.client.join(namespace, { appType: "sdk-test", meta: { level: 3 } });
      expect(first).toMatchObject({ namespace, total: 1, peers: [{ fingerprint: a.fingerprint, app_type: "sdk-test", meta: { level: 3 }, verified: true }] });
      const second = await b.client.join(namespace);
      expect(fingerprints(second)).toEqual([a.fingerprint, b.fingerprint]);
      expect((await a.next("peer_joined", (event) => event.from === b.fingerprint)).payload).toMatchObject({ fingerprint: b.fingerprint, alias: b.client.alias, verified: true });
      expect((await a.client.discover(namespace)).total).toBe(2);

      await a.client.signal(b.fingerprint, { signal_type: "offer", sdp: "v=0" });
      expect(await b.next("signal")).toMatchObject({ from: a.fingerprint, to: b.fingerprint, payload: { signal_type: "offer", sdp: "v=0" } });
      await b.client.relay(a.client.alias as string, { move: "e4" });
      expect(await a.next("relay")).toMatchObject({ from: b.fingerprint, to: a.fingerprint, payload: { move: "e4" } });
      await a.client.broadcast(namespace, { hello: "all" });
      expect(await b.next("broadcast")).toMatchObject({ from: a.fingerprint, namespace, payload: { namespace, data: { hello: "all" } } });

      const mode = unique("mode");
      expect(await a.client.match(namespace, 2, { mode })).toEqual({ status: "waiting", namespace });
      const matched = await b.client.match(namespace, 2, { mode });
      expect(matched).toMatchObject({ status: "matched", namespace, peers: [{ fingerprint: a.fingerprint }, { fingerprint: b.fingerprint }] });
      const sessionId = (matched as { session_id: string }).session_id;
      expect((await a.next("matched")).payload.session_id).toBe(sessionId);
      expect((await b.next("matched")).payload.session_id).toBe(sessionId);
      expect(await a.client.match(namespace, 2, { mode: unique("alone") })).toMatchObject({ status: "waiting" });
      await a.client.cancelMatch(namespace);

      await a.client.metadata({ color: "red" });
      const listed = await b.client.discover(namespace);
      expect(listed.peers.find((peer) => peer.fingerprint === a.fingerprint)?.meta).toEqual({ level: 3, color: "red" });

      const roomId = unique("room");
      expect(await a.client.createRoom({ roomId, maxSize: 4 })).toEqual({ room_id: roomId, max_size: 4, owner: a.fingerprint });
      expect(fingerprints(await b.client.joinRoom(roomId))).toEqual([a.fingerprint, b.fingerprint]);
      expect(await b.client.roomInfo(roomId)).toEqual({ room_id: roomId, max_size: 4, owner: a.fingerprint, peer_count: 2 });
      await a.client.kick(roomId, b.fingerprint);
      expect((await b.next("kick")).payload).toEqual({ room_id: roomId, fingerprint: b.fingerprint });
      expect(b.client.scopes.rooms).not.toContain(roomId);
      expect((await a.next("peer_left", (event) => event.namespace === roomId)).from).toBe(b.fingerprint);

      expect(await a.client.ping()).toBeGreaterThanOrEqual(0);
      // Access tokens are off on this server: refresh is refused, and the promise says so.
      await expect(a.client.refresh("a-token")).rejects.toMatchObject({ code: 400, ref: "refresh" });

      await b.client.leave(namespace);
      expect(await a.next("peer_left", (event) => event.from === b.fingerprint && event.namespace === namespace)).toMatchObject({ namespace });
      expect(b.client.scopes.namespaces).not.toContain(namespace);
      expect(a.client.scopes).toEqual({ namespaces: [namespace], rooms: [roomId] });
    });

    it("a refused request rejects with the server's code and ref, and a refused silent request is told from its neighbours", async () => {
      const [a, b, stranger] = [await pool.registered(server.http, transport), await pool.registered(server.http, transport), await pool.registered(server.http, transport)];
      const namespace = unique("ns");
      await a.client.join(namespace);
      await b.client.join(namespace);
      await expect(a.client.join("not a name!")).rejects.toMatchObject({ code: 400, ref: "join" });
      await expect(a.client.signal("f".repeat(64), { signal_type: "offer" })).rejects.toMatchObject({ code: 404, ref: "signal" });
      await expect(a.client.joinRoom(unique("nowhere"))).rejects.toBeInstanceOf(PeerError);

      // Sent back to back: an answered request, a silent one refused (no shared scope: 403), a silent
      // one that passes, an answered one. Each promise gets its own outcome.
      const outcomes = await Promise.allSettled([
        a.client.discover(namespace),
        a.client.relay(stranger.fingerprint, { no: "scope" }),
        a.client.relay(b.fingerprint, { yes: "scope" }),
        a.client.ping(),
      ]);
      expect(outcomes.map((outcome) => outcome.status)).toEqual(["fulfilled", "rejected", "fulfilled", "fulfilled"]);
      expect((outcomes[1] as PromiseRejectedResult).reason).toMatchObject({ code: 403, ref: "relay" });
      expect((await b.next("relay")).payload).toEqual({ yes: "scope" });
      expect(await stranger.nothing("relay")).toBe(true);
    });

    it("does not fight for its key: replaced by another connection of the same identity (4001), it closes and says why", async () => {
      const identity = await Identity.generate();
      const first = await pool.registered(server.http, transport, { identity });
      const second = await pool.registered(server.http, transport, { identity });
      expect(second.fingerprint).toBe(first.fingerprint);
      const notice = await first.next("error", (error) => error.closeCode === 4001);
      expect(notice).toBeInstanceOf(PeerError);
      await waitFor(() => first.client.state, (state) => state === "closed", { timeoutMs: 5_000, what: "the replaced client to close" });
      await expect(first.client.ping()).rejects.toMatchObject({ code: "closed" });
      expect(await second.client.ping()).toBeGreaterThanOrEqual(0);
      // The replaced client did not come back to take its key over in turn.
      expect(await second.nothing("error", (error) => error.closeCode === 4001, 1_000)).toBe(true);
      expect(first.client.state).toBe("closed");
    });

    it("reconnects after its TCP connection is cut and resumes: the partner sees no peer_left, the signal sent in the gap arrives, memberships hold", async () => {
      const proxy = await proxyTo(server.port);
      const a = await pool.registered(proxy.http, transport);
      const b = await pool.registered(server.http, transport);
      const namespace = unique("ns");
      const roomId = unique("room");
      await a.client.join(namespace);
      await a.client.createRoom({ roomId });
      await b.client.join(namespace);
      await b.client.joinRoom(roomId);

      proxy.hold();
      proxy.cut();
      await reconnecting(a);
      await b.client.signal(a.fingerprint, { signal_type: "offer", sdp: "sent in the gap" });
      // A request made while reconnecting waits for the connection, then goes out.
      const pinged = a.client.ping();
      proxy.release();

      const restored = await a.next("restored", undefined, 15_000);
      expect(restored).toMatchObject({ resumed: true, missed: 0 });
      expect(fingerprints(restored.lists[namespace] as PeerList)).toEqual([a.fingerprint, b.fingerprint]);
      expect((restored.lists[roomId] as PeerList).total).toBe(2);
      expect((await a.next("signal")).payload).toEqual({ signal_type: "offer", sdp: "sent in the gap" });
      await pinged;
      expect(a.client.state).toBe("open");
      expect(proxy.accepted).toBe(2);
      expect(await b.nothing("peer_left", (event) => event.from === a.fingerprint)).toBe(true);

      await b.client.broadcast(namespace, "after the resume");
      expect((await a.next("broadcast")).payload.data).toBe("after the resume");
      expect(await a.client.roomInfo(roomId)).toMatchObject({ owner: a.fingerprint, peer_count: 2 });
      expect(a.client.scopes).toEqual({ namespaces: [namespace], rooms: [roomId] });
    });
  });
});

describe("SDK against a server that does not resume (resume_grace 0)", () => {
  let server: ServerProcess;
  beforeAll(async () => {
    server = await startServer({ config: { resume_grace: 0 } });
  });
  afterAll(async () => {
    await server.stop();
  });

  it.each(SDK_TRANSPORTS)("over %s the client registers afresh, joins its namespace and room again and repeats its waiting match", async (transport) => {
    const proxy = await proxyTo(server.port);
    const a = await pool.registered(proxy.http, transport);
    const b = await pool.registered(server.http, transport);
    const namespace = unique("ns");
    const roomId = unique("room");
    const mode = unique("mode");
    await a.client.join(namespace, { appType: "again" });
    await a.client.createRoom({ roomId, maxSize: 5 });
    expect(await a.client.match(namespace, 2, { mode })).toMatchObject({ status: "waiting" });
    await b.client.join(namespace);
    await b.client.joinRoom(roomId);

    proxy.cut();
    await b.next("peer_left", (event) => event.from === a.fingerprint && event.namespace === namespace);
    await b.next("peer_left", (event) => event.from === a.fingerprint && event.namespace === roomId);
    const restored = await a.next("restored", undefined, 15_000);
    expect(restored.resumed).toBe(false);
    expect(fingerprints(restored.lists[namespace] as PeerList)).toEqual([b.fingerprint, a.fingerprint]);
    expect(fingerprints(restored.lists[roomId] as PeerList)).toEqual([b.fingerprint, a.fingerprint]);
    expect((await b.next("peer_joined", (event) => event.namespace === namespace)).payload).toMatchObject({ fingerprint: a.fingerprint, app_type: "again" });
    await b.next("peer_joined", (event) => event.namespace === roomId);
    // The ticket waits again: b's request completes the pair.
    expect(await b.client.match(namespace, 2, { mode })).toMatchObject({ status: "matched" });
    await a.next("matched");
    expect(a.client.scopes).toEqual({ namespaces: [namespace], rooms: [roomId] });
  });
});

describe("SDK resume on another Redis node", () => {
  let redis: RedisServer;
  let nodes: ServerProcess[];
  beforeAll(async () => {
    redis = await startRedisServer();
    nodes = await startNodes(redis, [{}, {}]);
  }, 60_000);
  afterAll(async () => {
    await Promise.all((nodes ?? []).map((node) => node.stop()));
    await redis?.stop();
  });

  it.each(SDK_TRANSPORTS)("over %s a client cut from node 0 resumes on node 1 with its memberships and the signal sent in the gap", async (transport) => {
    const [first, second] = nodes as [ServerProcess, ServerProcess];
    const proxy = await proxyTo(first.port);
    const a = await pool.registered(proxy.http, transport);
    const b = await pool.registered(second.http, transport);
    const namespace = unique("ns");
    await a.client.join(namespace);
    await b.client.join(namespace);
    expect(await nodeIndexOf(nodes, a.fingerprint)).toBe(0);

    proxy.hold();
    proxy.retarget(second.port);
    proxy.cut();
    await reconnecting(a);
    await b.client.signal(a.fingerprint, { signal_type: "offer", sdp: "across nodes" });
    proxy.release();

    expect(await a.next("restored", undefined, 15_000)).toMatchObject({ resumed: true, missed: 0 });
    expect((await a.next("signal")).payload).toEqual({ signal_type: "offer", sdp: "across nodes" });
    expect(await nodeIndexOf(nodes, a.fingerprint)).toBe(1);
    expect(await b.nothing("peer_left", (event) => event.from === a.fingerprint)).toBe(true);
    await b.client.broadcast(namespace, "still here?");
    expect((await a.next("broadcast")).payload.data).toBe("still here?");
  });
});
