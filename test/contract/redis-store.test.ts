import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { ProtocolError } from "../../src/protocol/errors.ts";
import { RedisStore, type RedisStatus, type RedisStoreOptions } from "../../src/backends/redis/redis-store.ts";
import type { MatchOutcome } from "../../src/backends/state-store.ts";
import { type RedisServer, startRedisServer } from "../helpers/redis-server.ts";
import { codeAndTime } from "../helpers/outcome.ts";
import { storeContract } from "./store.contract.ts";

const uid = (): string => randomBytes(6).toString("hex");
const newFingerprint = (): string => randomBytes(32).toString("hex");

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedisServer();
});
afterAll(async () => {
  await redis?.stop();
});

async function openStore(options: Partial<RedisStoreOptions> & { url: string }): Promise<RedisStore> {
  const store = new RedisStore({ keyPrefix: `{test-${uid()}}:`, ...options });
  await store.whenReady();
  return store;
}

storeContract("RedisStore", () => openStore({ url: redis.url }));

describe("RedisStore specifics", () => {
  const opened: RedisStore[] = [];
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((store) => store.close()));
  });

  /** Two stores on one Redis with one key prefix: two nodes of one deployment. */
  async function twoNodes(): Promise<[RedisStore, RedisStore]> {
    const keyPrefix = `{test-${uid()}}:`;
    const nodes: [RedisStore, RedisStore] = [await openStore({ url: redis.url, keyPrefix }), await openStore({ url: redis.url, keyPrefix })];
    opened.push(...nodes);
    return nodes;
  }

  it("two nodes on one Redis share peers, aliases, namespaces, rooms and removeNode", async () => {
    const [a, b] = await twoNodes();
    const namespace = `ns-${uid()}`;
    const room = `room-${uid()}`;
    const alias = `alias-${uid()}`;
    const onA = await register(a, "node-a", alias);
    const onB = await register(b, "node-b");

    // Uniqueness is deployment-wide: node b cannot take node a's alias.
    await expect(b.registerPeer({ fingerprint: newFingerprint(), connectionId: "c", nodeId: "node-b", alias, aliasCandidates: [], meta: {}, verified: false })).rejects.toMatchObject({
      code: 409,
    });
    expect(await b.resolvePeer(alias)).toEqual({ fingerprint: onA.fingerprint, alias, connectionId: onA.connectionId, nodeId: "node-a" });

    await a.joinNamespace(namespace, onA.fingerprint, { appType: "game", meta: undefined, listLimit: 50 });
    const joined = await b.joinNamespace(namespace, onB.fingerprint, { appType: "chat", meta: undefined, listLimit: 50 });
    expect(joined.peers.map((peer) => [peer.fingerprint, peer.app_type, peer.meta])).toEqual([
      [onA.fingerprint, "game", { node: "node-a" }],
      [onB.fingerprint, "chat", { node: "node-b" }],
    ]);
    expect(await a.sharesScope(onA.fingerprint, onB.fingerprint)).toBe(true);
    expect((await a.stats()).namespaces).toEqual({ [namespace]: 2 });

    await a.createRoom(room, onA.fingerprint, 2);
    expect((await b.joinRoom(room, onB.fingerprint, 50)).total).toBe(2);
    expect(await b.roomInfo(room)).toEqual({ room_id: room, peer_count: 2, max_size: 2, owner: onA.fingerprint });

    // Node a died: node b cleans up after it.
    const departures = await b.removeNode("node-a");
    expect(departures.map((departure) => [departure.fingerprint, [...departure.scopes].sort()])).toEqual([[onA.fingerprint, [namespace, room].sort()]]);
    expect(await a.resolvePeer(alias)).toBeUndefined();
    expect(await a.roomInfo(room)).toEqual({ room_id: room, peer_count: 1, max_size: 2, owner: onB.fingerprint });
    expect(await a.stats()).toEqual({ totalPeers: 1, namespaces: { [namespace]: 1 }, peersByKind: { "": 1 } });
  });

  it("two nodes share the bans; expired ones are forgotten in Redis itself", async () => {
    const [a, b] = await twoNodes();
    const now = Date.now();
    const ban = { id: `ban-${uid()}`, kind: "fingerprint" as const, value: newFingerprint(), reason: "spam", createdAt: now, expiresAt: now + 1_000 };
    await a.addBan(ban, now);
    expect(await b.listBans(now)).toEqual([ban]);
    expect(await b.listBans(ban.expiresAt)).toEqual([]);
    expect(await a.listBans(now)).toEqual([]);
    const lifted = { ...ban, id: `ban-${uid()}`, expiresAt: now + 60_000 };
    await b.addBan(lifted, now);
    expect(await a.removeBan(lifted.id, now)).toBe(true);
    expect(await b.listBans(now)).toEqual([]);
  });

  it("a fingerprint taken over through another node is reported as replaced there", async () => {
    const [a, b] = await twoNodes();
    const namespace = `ns-${uid()}`;
    const first = await register(a, "node-a");
    await a.joinNamespace(namespace, first.fingerprint, { appType: "", meta: undefined, listLimit: 50 });
    const registration = await b.registerPeer({ fingerprint: first.fingerprint, connectionId: "moved", nodeId: "node-b", alias: undefined, aliasCandidates: [`gen-${uid()}`], meta: {}, verified: false });
    expect(registration.replaced).toEqual({ fingerprint: first.fingerprint, scopes: [namespace], connectionId: first.connectionId });
    // The old node's late goodbye does not remove the new connection, nor does removing the old node.
    expect(await a.unregisterPeer(first.fingerprint, first.connectionId)).toBeUndefined();
    expect(await a.removeNode("node-a")).toEqual([]);
    expect(await a.resolvePeer(first.fingerprint)).toMatchObject({ connectionId: "moved", nodeId: "node-b" });
  });

  it("50 tickets requested concurrently through two nodes form exactly 25 groups, each peer in one", async () => {
    const [a, b] = await twoNodes();
    const namespace = `ns-${uid()}`;
    const peers = await Promise.all(Array.from({ length: 50 }, (_, index) => register(index % 2 === 0 ? a : b, index % 2 === 0 ? "node-a" : "node-b")));
    await Promise.all(peers.map((peer, index) => (index % 2 === 0 ? a : b).joinNamespace(namespace, peer.fingerprint, { appType: "", meta: undefined, listLimit: 0 })));

    const outcomes: MatchOutcome[] = await Promise.all(
      peers.map((peer, index) =>
        (index % 2 === 0 ? a : b).requestMatch({ namespace, fingerprint: peer.fingerprint, groupSize: 2, criteria: { mode: "duel" }, sessionId: uid() }),
      ),
    );
    const groups = outcomes.flatMap((outcome) => (outcome.status === "matched" ? [outcome.peers.map((peer) => peer.fingerprint)] : []));
    expect(groups).toHaveLength(25);
    expect(groups.every((group) => group.length === 2 && group[0] !== group[1])).toBe(true);
    const placed = groups.flat();
    expect(new Set(placed).size).toBe(50);
    expect(new Set(placed)).toEqual(new Set(peers.map((peer) => peer.fingerprint)));
    // No ticket is left waiting.
    for (const [index, peer] of peers.entries()) expect(await (index % 2 === 0 ? b : a).cancelMatch(namespace, peer.fingerprint)).toBe(false);
  });

  it("40 tickets with avoid lists requested concurrently through two nodes: nobody twice, never a pair that avoids itself", async () => {
    const [a, b] = await twoNodes();
    const queue = `queue-${uid()}`;
    const node = (index: number) => (index % 2 === 0 ? a : b);
    const peers = await Promise.all(Array.from({ length: 40 }, (_, index) => register(node(index), index % 2 === 0 ? "node-a" : "node-b")));
    // Each avoids the peers just before it, so many of the oldest tickets are skipped.
    const avoid = (index: number) => peers.slice(Math.max(0, index - 3), index).map((peer) => peer.fingerprint);
    const outcomes = await Promise.all(
      peers.map((peer, index) =>
        node(index).requestMatch({ namespace: queue, fingerprint: peer.fingerprint, groupSize: 2, criteria: {}, sessionId: uid(), open: true, avoid: avoid(index) }),
      ),
    );
    const groups = outcomes.flatMap((outcome) => (outcome.status === "matched" ? [outcome.peers.map((peer) => peer.fingerprint)] : []));
    const placed = groups.flat();
    expect(new Set(placed).size).toBe(placed.length);
    const position = new Map(peers.map((peer, index) => [peer.fingerprint, index]));
    for (const [first, second] of groups) {
      const [i, j] = [position.get(first ?? "") ?? -1, position.get(second ?? "") ?? -1];
      expect(Math.abs(i - j)).toBeGreaterThan(3);
    }
    // Whoever is left still waits, and any two of them avoid each other (else they would be a pair).
    const left: number[] = [];
    for (const [index, peer] of peers.entries()) if (await node(index + 1).cancelMatch(queue, peer.fingerprint)) left.push(index);
    expect(left.length + placed.length).toBe(40);
    for (const i of left) for (const j of left) expect(Math.abs(i - j)).toBeLessThanOrEqual(3);
  });

  it("an avoid list and a kind count leave no key behind once their ticket and peer go", async () => {
    const keyPrefix = `{test-${uid()}}:`;
    const store = await openStore({ url: redis.url, keyPrefix });
    opened.push(store);
    const admin = new Redis(redis.url);
    try {
      const [x, y, z] = [await register(store, "node-a"), await register(store, "node-a"), await register(store, "node-b")];
      const ticket = (peer: { fingerprint: string }, avoid: string[]) =>
        store.requestMatch({ namespace: "q", fingerprint: peer.fingerprint, groupSize: 2, criteria: {}, sessionId: uid(), open: true, avoid });
      expect(await ticket(x, [y.fingerprint])).toEqual({ status: "waiting" });
      expect(await ticket(y, [x.fingerprint, z.fingerprint])).toEqual({ status: "waiting" });
      expect((await admin.keys(`${keyPrefix}avoid:*`)).length).toBe(1);
      expect(await ticket(z, [])).toMatchObject({ status: "matched", peers: [{ fingerprint: x.fingerprint }, { fingerprint: z.fingerprint }] });
      await store.unregisterPeer(y.fingerprint, y.connectionId);
      expect(await admin.keys(`${keyPrefix}avoid:*`)).toEqual([]);
      expect(await admin.keys(`${keyPrefix}queue:*`)).toEqual([]);
      await store.removeNode("node-a");
      await store.removeNode("node-b");
      expect(await admin.exists(`${keyPrefix}kinds`)).toBe(0);
      expect(await store.stats()).toEqual({ totalPeers: 0, namespaces: {}, peersByKind: {} });
    } finally {
      admin.disconnect();
    }
  });

  it("concurrent joins of a nearly full room from two nodes never overfill it", async () => {
    const [a, b] = await twoNodes();
    const room = `room-${uid()}`;
    const owner = await register(a, "node-a");
    await a.createRoom(room, owner.fingerprint, 5);
    const guests = await Promise.all(Array.from({ length: 12 }, (_, index) => register(index % 2 === 0 ? a : b, "node-x")));
    const results = await Promise.allSettled(guests.map((guest, index) => (index % 2 === 0 ? a : b).joinRoom(room, guest.fingerprint, 50)));
    const codes = results.map((result) => (result.status === "fulfilled" ? "joined" : (result.reason as ProtocolError).code));
    expect(codes.filter((code) => code === "joined")).toHaveLength(4);
    expect(codes.filter((code) => code === 429)).toHaveLength(8);
    expect((await b.roomInfo(room)).peer_count).toBe(5);
  });
});

describe("RedisStore during a Redis outage", () => {
  let own: RedisServer;
  let admin: Redis | undefined;
  const opened: RedisStore[] = [];
  beforeAll(async () => {
    own = await startRedisServer();
  });
  afterEach(async () => {
    admin?.disconnect();
    admin = undefined;
    await Promise.all(opened.splice(0).map((store) => store.close()));
  });
  afterAll(async () => {
    await own?.stop();
  });

  async function ownStore(): Promise<RedisStore> {
    const store = await openStore({ url: own.url });
    opened.push(store);
    return store;
  }

  /** Makes Redis hold every client's commands unanswered for `ms`, as a hung server would. */
  async function pauseRedis(ms: number): Promise<void> {
    admin = new Redis(own.url, { lazyConnect: true });
    await admin.connect();
    await admin.call("CLIENT", "PAUSE", String(ms), "ALL");
  }

  it("rejects calls with 503 quickly while Redis is down, and works again once it is back (reporting the lost state)", async () => {
    const store = await ownStore();
    const statuses: { status: RedisStatus; stateLost: boolean }[] = [];
    store.onStatusChange((status, details) => statuses.push({ status, ...details }));
    const before = await register(store, "node-a");
    expect(store.isReady()).toBe(true);

    await own.kill();
    await expect.poll(() => store.isReady()).toBe(false);
    const failed = await codeAndTime(store.resolvePeer(before.fingerprint));
    expect(failed.code).toBe(503);
    expect(failed.elapsed).toBeLessThan(2_000);
    await expect(register(store, "node-a")).rejects.toMatchObject({ code: 503 });
    await expect(store.stats()).rejects.toMatchObject({ code: 503 });

    await own.restart();
    await store.whenReady(10_000);
    expect(store.isReady()).toBe(true);
    // Redis came back empty, and the store says so, so a node knows to register its peers again.
    expect(statuses).toEqual([
      { status: "down", stateLost: false },
      { status: "ready", stateLost: true },
    ]);
    expect(await store.resolvePeer(before.fingerprint)).toBeUndefined();
    const after = await register(store, "node-a", `alias-${uid()}`);
    expect((await store.resolvePeer(after.alias))?.fingerprint).toBe(after.fingerprint);
    expect((await store.stats()).totalPeers).toBe(1);
  });

  it("a call in flight when Redis dies rejects with 503 at once, and is not replayed after the restart", async () => {
    const store = await ownStore();
    const peer = await register(store, "node-a");
    await pauseRedis(10_000);
    // Sent and unanswered (Redis holds it) when the process dies.
    const inFlight = codeAndTime(store.registerPeer({ fingerprint: newFingerprint(), connectionId: "late", nodeId: "node-a", alias: "late", aliasCandidates: [], meta: {}, verified: false }));
    await new Promise((resolve) => setTimeout(resolve, 100));
    await own.kill();
    const failed = await inFlight;
    expect(failed.code).toBe(503);
    expect(failed.elapsed).toBeLessThan(2_000);

    await own.restart();
    await store.whenReady(10_000);
    expect(await store.resolvePeer(peer.fingerprint)).toBeUndefined();
    // The failed registration was not sent again behind the caller's back.
    expect(await store.resolvePeer("late")).toBeUndefined();
  });

  it("a Redis that stops answering fails calls with 503 after the command timeout; the store carries on afterwards", async () => {
    const store = await ownStore();
    const peer = await register(store, "node-a");
    await pauseRedis(2_500);
    const failed = await codeAndTime(store.resolvePeer(peer.fingerprint));
    expect(failed.code).toBe(503);
    expect(failed.elapsed).toBeLessThan(2_000);
    await expect.poll(() => store.resolvePeer(peer.fingerprint).catch(() => undefined), { timeout: 5_000, interval: 200 }).toMatchObject({
      fingerprint: peer.fingerprint,
    });
  });
});

function register(store: RedisStore, nodeId: string, alias?: string) {
  const fingerprint = newFingerprint();
  const connectionId = `conn-${uid()}`;
  return store
    .registerPeer({ fingerprint, connectionId, nodeId, alias, aliasCandidates: [`gen-${uid()}`], meta: { node: nodeId }, verified: false })
    .then((registration) => ({ fingerprint, connectionId, alias: registration.alias }));
}
