import { randomBytes } from "node:crypto";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ProtocolError } from "../../src/protocol/errors.ts";
import { ReplicatedStore } from "../../src/backends/cluster/replicated-store.ts";
import type { Departure, RegisterPeer } from "../../src/backends/state-store.ts";
import { forkStoreHost, type ReplicaChannel, type StoreHostProcess } from "../helpers/store-host.ts";
import { waitFor } from "../helpers/wait.ts";
import { storeContract } from "./store.contract.ts";

/**
 * ReplicatedStore against a StoreHost running in another real process (a forked child speaking
 * Node IPC with advanced serialization, as the cluster primary does with its workers).
 */

const CALL_TIMEOUT_MS = 3_000;

let host: StoreHostProcess;
beforeAll(async () => {
  host = await forkStoreHost();
});
afterAll(async () => {
  await host.kill();
});

interface Replica {
  store: ReplicatedStore;
  channel: ReplicaChannel;
  departures: Departure[][];
}

async function openReplica(on: StoreHostProcess, callTimeoutMs = CALL_TIMEOUT_MS): Promise<Replica> {
  const channel = on.link();
  const departures: Departure[][] = [];
  const store = new ReplicatedStore(channel, { callTimeoutMs, onDepartures: (batch) => departures.push(batch) });
  // As the worker's dispatcher does with the primary's store messages.
  channel.onMessage((message) => store.receive(message));
  await store.start();
  return { store, channel, departures };
}

storeContract("ReplicatedStore over IPC to a StoreHost process", async () => {
  const { store, channel } = await openReplica(host);
  // A closed store's link is detached too, so the host does not keep replicating to every past test's replica.
  const close = store.close.bind(store);
  store.close = async () => {
    await close();
    channel.detach();
  };
  return store;
});

describe("ReplicatedStore: several replicas of one host", () => {
  const open: Replica[] = [];
  const replica = async (on = host, callTimeoutMs?: number): Promise<Replica> => {
    const created = await openReplica(on, callTimeoutMs);
    open.push(created);
    return created;
  };
  afterEach(async () => {
    for (const { store, channel } of open.splice(0)) {
      await store.close();
      channel.detach();
    }
  });

  const uid = (): string => randomBytes(6).toString("hex");
  const fingerprint = (): string => randomBytes(32).toString("hex");
  const request = (nodeId: string, options: Partial<RegisterPeer> = {}): RegisterPeer => ({
    fingerprint: fingerprint(),
    connectionId: `conn-${uid()}`,
    nodeId,
    alias: undefined,
    aliasCandidates: [`gen-${uid()}`],
    meta: {},
    verified: false,
    ...options,
  });
  const joinOptions = { appType: "app", meta: undefined, listLimit: 50 };

  it("the host writes a mutation to the other replicas before the result to its caller, even when calls are batched", async () => {
    // Here every replica shares one channel to the host, so "written before" is "applied before":
    // once a caller has its result, a watching replica reads the change without polling.
    const [writers, watcher] = [[await replica(), await replica()], await replica()];
    const namespace = `ns-${uid()}`;
    const peers = writers.map((writer) => ({ writer, peer: request(`node-${uid()}`) }));
    // Both writers call in the same turn: the host answers both in one flush.
    await Promise.all(peers.map(({ writer, peer }) => writer.store.registerPeer(peer)));
    for (const { peer } of peers) expect(await watcher.store.resolvePeer(peer.fingerprint)).toMatchObject({ fingerprint: peer.fingerprint });
    for (const { writer, peer } of peers) {
      await writer.store.joinNamespace(namespace, peer.fingerprint, joinOptions);
      expect(await watcher.store.isMember(namespace, peer.fingerprint)).toBe(true);
    }
  });

  it("the writer reads its own writes at once; another replica sees them soon after", async () => {
    const [writer, reader] = [await replica(), await replica()];
    const namespace = `ns-${uid()}`;
    const room = `room-${uid()}`;
    const alias = `alias-${uid()}`;
    const peer = request("node-a", { alias, meta: { color: "red" } });

    // Read-your-writes: every read right after the awaited mutation already shows it, no polling.
    expect((await writer.store.registerPeer(peer)).alias).toBe(alias);
    expect(await writer.store.resolvePeer(alias)).toMatchObject({ fingerprint: peer.fingerprint, nodeId: "node-a" });
    await writer.store.joinNamespace(namespace, peer.fingerprint, joinOptions);
    expect(await writer.store.isMember(namespace, peer.fingerprint)).toBe(true);
    await writer.store.createRoom(room, peer.fingerprint, 4);
    expect(await writer.store.roomInfo(room)).toEqual({ room_id: room, peer_count: 1, max_size: 4, owner: peer.fingerprint });
    await writer.store.updateMeta(peer.fingerprint, { level: 3 });
    expect((await writer.store.listMembers(namespace, peer.fingerprint, 50)).peers[0]?.meta).toEqual({ color: "red", level: 3 });

    // Replication to the other replicas is asynchronous: poll the reader.
    await waitFor(
      () => reader.store.roomInfo(room).catch(() => undefined),
      (info) => info !== undefined,
      { timeoutMs: 3_000, intervalMs: 10, what: "the other replica to show the writer's room" },
    );
    expect(await reader.store.resolvePeer(peer.fingerprint)).toMatchObject({ alias, connectionId: peer.connectionId });
    expect(await reader.store.isMember(namespace, peer.fingerprint)).toBe(true);
    expect((await reader.store.listMembers(namespace, peer.fingerprint, 50)).peers).toEqual([
      { fingerprint: peer.fingerprint, alias, app_type: "app", meta: { color: "red", level: 3 }, verified: false },
    ]);
    expect((await reader.store.stats()).namespaces[namespace]).toBe(1);

    // The other direction, and uniqueness decided by the host for both replicas.
    const second = request("node-b");
    await reader.store.registerPeer(second);
    await reader.store.joinRoom(room, second.fingerprint, 50);
    expect(await reader.store.sharesScope(second.fingerprint, peer.fingerprint)).toBe(true);
    await waitFor(() => writer.store.roomInfo(room), (info) => info.peer_count === 2, {
      timeoutMs: 3_000,
      intervalMs: 10,
      what: "the writer's replica to show the reader's join",
    });
    const intruder = request("node-b", { alias });
    const refused = await reader.store.registerPeer(intruder).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(ProtocolError);
    expect((refused as ProtocolError).code).toBe(409);
    expect(await writer.store.resolvePeer(intruder.fingerprint)).toBeUndefined();
  });

  it("a failed mutation changes no replica", async () => {
    const [writer, reader] = [await replica(), await replica()];
    const room = `room-${uid()}`;
    const [owner, guest, late] = [request("node-a"), request("node-a"), request("node-a")];
    for (const peer of [owner, guest, late]) await writer.store.registerPeer(peer);
    await writer.store.createRoom(room, owner.fingerprint, 2);
    await writer.store.joinRoom(room, guest.fingerprint, 50);
    const full = await writer.store.joinRoom(room, late.fingerprint, 50).catch((error: unknown) => error);
    expect((full as ProtocolError).code).toBe(429);
    // A later mutation from the reader is answered after every earlier change reached it.
    await reader.store.updateMeta(late.fingerprint, { seen: true });
    for (const { store } of [writer, reader]) {
      expect(await store.roomInfo(room)).toMatchObject({ peer_count: 2 });
      expect(await store.isMember(room, late.fingerprint)).toBe(false);
    }
  });

  it("a replica that starts later gets the current state as a snapshot", async () => {
    const writer = await replica();
    const namespace = `ns-${uid()}`;
    const peers = [request("node-a"), request("node-a"), request("node-a")];
    for (const peer of peers) {
      await writer.store.registerPeer(peer);
      await writer.store.joinNamespace(namespace, peer.fingerprint, joinOptions);
    }
    const late = await replica();
    // Right after start(), without waiting for anything else.
    const page = await late.store.listMembers(namespace, peers[0]?.fingerprint ?? "", 50);
    expect(page.peers.map((member) => member.fingerprint)).toEqual(peers.map((peer) => peer.fingerprint));
  });

  it("bans reach every replica as they change, and a replica that starts later gets them in its snapshot", async () => {
    const [writer, reader] = [await replica(), await replica()];
    const now = Date.now();
    const ban = { id: `ban-${uid()}`, kind: "ip" as const, value: "127.0.0.3", reason: "", createdAt: now, expiresAt: now + 60_000 };
    await writer.store.addBan(ban, now);
    const ours = async (store: ReplicatedStore) => (await store.listBans(now)).filter((entry) => entry.id === ban.id);
    await waitFor(() => ours(reader.store), (found) => found.length === 1, { timeoutMs: 2_000, what: "the ban on the other replica" });
    const late = await replica();
    expect(await ours(late.store)).toEqual([ban]);
    expect(await reader.store.removeBan(ban.id, now)).toBe(true);
    for (const { store } of [writer, late]) {
      await waitFor(() => ours(store), (found) => found.length === 0, { timeoutMs: 2_000, what: "the lifted ban gone" });
    }
  });

  it("a replica started later holds the waiting tickets' avoid lists and replays matches as the host decides them", async () => {
    const writer = await replica();
    const queue = `queue-${uid()}`;
    const [a, b, c] = [request("node-a"), request("node-a"), request("node-a")];
    for (const peer of [a, b, c]) await writer.store.registerPeer(peer);
    const ticket = (peer: RegisterPeer, avoid: string[] = []) => ({
      namespace: queue,
      fingerprint: peer.fingerprint,
      groupSize: 2,
      criteria: {},
      sessionId: uid(),
      open: true,
      avoid,
      groupRoom: `pair-${uid()}`,
    });
    expect(await writer.store.requestMatch(ticket(a, [b.fingerprint]))).toEqual({ status: "waiting" });
    // Started now, its whole view of a's ticket comes from the snapshot.
    const late = await replica();
    expect(await writer.store.requestMatch(ticket(b))).toEqual({ status: "waiting" });
    const third = ticket(c);
    expect(await writer.store.requestMatch(third)).toMatchObject({ status: "matched" });
    // A later call through the late replica is answered after every replay reached it.
    await late.store.updateMeta(c.fingerprint, { seen: true });
    for (const { store } of [writer, late]) {
      expect(await store.roomInfo(third.groupRoom)).toEqual({ room_id: third.groupRoom, peer_count: 2, max_size: 2, owner: a.fingerprint });
      expect(await store.sharesScope(a.fingerprint, b.fingerprint)).toBe(false);
      expect(await store.isMember(third.groupRoom, b.fingerprint)).toBe(false);
    }
    // b still waits on every copy: its ticket pairs with the next peer.
    const d = request("node-a");
    await late.store.registerPeer(d);
    const fourth = ticket(d);
    expect(await late.store.requestMatch(fourth)).toMatchObject({ status: "matched", peers: [{ fingerprint: b.fingerprint }, { fingerprint: d.fingerprint }] });
    await writer.store.updateMeta(d.fingerprint, { seen: true });
    for (const { store } of [writer, late]) expect(await store.roomInfo(fourth.groupRoom)).toMatchObject({ peer_count: 2, owner: b.fingerprint });
  });

  it("removeNode by the host (a worker died) reports the departures to onDepartures on the other replicas", async () => {
    const [dying, survivor] = [await replica(), await replica()];
    const deadNode = `node-${uid()}`;
    const namespace = `ns-${uid()}`;
    const room = `room-${uid()}`;
    const [owner, idle] = [request(deadNode), request(deadNode)];
    const stayer = request(`node-${uid()}`);
    await dying.store.registerPeer(owner);
    await dying.store.registerPeer(idle);
    await survivor.store.registerPeer(stayer);
    await dying.store.joinNamespace(namespace, owner.fingerprint, joinOptions);
    await dying.store.createRoom(room, owner.fingerprint, 5);
    await survivor.store.joinNamespace(namespace, stayer.fingerprint, joinOptions);
    await survivor.store.joinRoom(room, stayer.fingerprint, 50);

    // As the primary does: the dead worker's link is detached, then its node removed.
    dying.channel.detach();
    const departures = await host.removeNode(deadNode);
    const sorted = (batch: Departure[]) =>
      new Map(batch.map((departure) => [departure.fingerprint, [...departure.scopes].sort()]));
    const expected = new Map([
      [owner.fingerprint, [namespace, room].sort()],
      [idle.fingerprint, []],
    ]);
    expect(sorted(departures)).toEqual(expected);
    // The host's answer comes after its replay to every replica on the same channel, so the
    // survivor has already reported the departures: exactly once.
    expect(survivor.departures.map(sorted)).toEqual([expected]);
    expect(dying.departures).toEqual([]);

    expect(await survivor.store.resolvePeer(owner.fingerprint)).toBeUndefined();
    expect(await survivor.store.roomInfo(room)).toMatchObject({ owner: stayer.fingerprint, peer_count: 1 });
    expect((await survivor.store.listMembers(namespace, stayer.fingerprint, 50)).total).toBe(1);

    // Nothing left for that node: no second report.
    expect(await host.removeNode(deadNode)).toEqual([]);
    expect(survivor.departures).toHaveLength(1);
  });

  it("a replica's own removeNode call reports the departures on every replica", async () => {
    const [caller, other] = [await replica(), await replica()];
    const deadNode = `node-${uid()}`;
    const namespace = `ns-${uid()}`;
    const gone = request(deadNode);
    await caller.store.registerPeer(gone);
    await caller.store.joinNamespace(namespace, gone.fingerprint, joinOptions);
    expect(await caller.store.removeNode(deadNode)).toEqual([{ fingerprint: gone.fingerprint, scopes: [namespace] }]);
    expect(caller.departures).toEqual([[{ fingerprint: gone.fingerprint, scopes: [namespace] }]]);
    // A later call through the other replica is answered after the replay reached it.
    await other.store.registerPeer(request("node-x"));
    expect(other.departures).toEqual([[{ fingerprint: gone.fingerprint, scopes: [namespace] }]]);
  });

  it("fails a call with 503 once the host process is gone; local reads still answer", async () => {
    const doomedHost = await forkStoreHost();
    try {
      const { store } = await replica(doomedHost, 300);
      const peer = request("node-a");
      await store.registerPeer(peer);
      await doomedHost.kill();

      const error = await store.registerPeer(request("node-a")).catch((reason: unknown) => reason);
      expect(error).toBeInstanceOf(ProtocolError);
      expect((error as ProtocolError).code).toBe(503);
      const joinError = await store.joinNamespace(`ns-${uid()}`, peer.fingerprint, joinOptions).catch((reason: unknown) => reason);
      expect((joinError as ProtocolError).code).toBe(503);
      expect(await store.resolvePeer(peer.fingerprint)).toMatchObject({ connectionId: peer.connectionId });
    } finally {
      await doomedHost.kill();
    }
  });

  it("close fails a call still waiting for the host with 503", async () => {
    const doomedHost = await forkStoreHost();
    try {
      const { store } = await replica(doomedHost, 10_000);
      await doomedHost.kill();
      const pending = store.registerPeer(request("node-a")).catch((reason: unknown) => reason);
      await store.close();
      const error = await pending;
      expect(error).toBeInstanceOf(ProtocolError);
      expect((error as ProtocolError).code).toBe(503);
    } finally {
      await doomedHost.kill();
    }
  });
});
