import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { RedisStore, type RedisStatus } from "../../src/backends/redis/redis-store.ts";
import { startRedisCluster, type RedisClusterControl } from "../helpers/redis-cluster.ts";
import { codeAndTime } from "../helpers/outcome.ts";
import { storeContract } from "./store.contract.ts";

/*
 * RedisStore on a real 3-master Redis Cluster. Each store gets its own prefix, so its hash tag,
 * so its slot: across the suite the state lands on every master, and every script must reach the
 * master that holds its slot.
 */

const uid = (): string => randomBytes(6).toString("hex");
const newFingerprint = (): string => randomBytes(32).toString("hex");

let cluster: RedisClusterControl;
beforeAll(async () => {
  cluster = await startRedisCluster();
});
afterAll(async () => {
  await cluster?.stop();
});

async function openStore(on: RedisClusterControl, keyPrefix = `{test-${uid()}}:`): Promise<RedisStore> {
  const store = new RedisStore({ endpoint: { mode: "cluster", seeds: on.seeds, password: "" }, keyPrefix });
  await store.whenReady();
  return store;
}

storeContract("RedisStore on a Redis Cluster", () => openStore(cluster));

/** A plain connection to node `index` of `on`. */
async function nodeClient(on: RedisClusterControl, index: number): Promise<Redis> {
  const seed = on.seeds[index];
  if (seed === undefined) throw new Error(`no node ${index}`);
  const client = new Redis({ ...seed, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on("error", () => undefined);
  await client.connect();
  return client;
}

/** Index (into `seeds`) of the master serving the slot of `key`. */
async function masterOf(on: RedisClusterControl, key: string): Promise<number> {
  const client = await nodeClient(on, 0);
  try {
    const slot = (await client.call("CLUSTER", "KEYSLOT", key)) as number;
    const ranges = (await client.call("CLUSTER", "SLOTS")) as [number, number, [string, number, ...unknown[]]][];
    const port = ranges.find(([start, end]) => start <= slot && slot <= end)?.[2][1];
    return on.seeds.findIndex((seed) => seed.port === port);
  } finally {
    client.disconnect();
  }
}

function register(store: RedisStore, nodeId: string, alias?: string) {
  const fingerprint = newFingerprint();
  const connectionId = `conn-${uid()}`;
  return store
    .registerPeer({ fingerprint, connectionId, nodeId, alias, aliasCandidates: [`gen-${uid()}`], meta: {}, verified: false })
    .then((registration) => ({ fingerprint, connectionId, alias: registration.alias }));
}

describe("RedisStore on a Redis Cluster: one slot for the state", () => {
  it("keeps every key of a deployment on the one master of its prefix's slot", async () => {
    const keyPrefix = `{test-${uid()}}:`;
    const store = await openStore(cluster, keyPrefix);
    const clients = await Promise.all(cluster.seeds.map((_, index) => nodeClient(cluster, index)));
    try {
      const peers = await Promise.all(Array.from({ length: 6 }, () => register(store, "node-a")));
      const room = `room-${uid()}`;
      await store.createRoom(room, peers[0]?.fingerprint ?? "", 8);
      for (const peer of peers.slice(1)) await store.joinRoom(room, peer.fingerprint, 10);
      await store.requestMatch({ namespace: room, fingerprint: peers[0]?.fingerprint ?? "", groupSize: 3, criteria: {}, sessionId: uid() });

      const holder = await masterOf(cluster, keyPrefix);
      const counts = await Promise.all(clients.map(async (client) => (await client.keys(`${keyPrefix}*`)).length));
      // peer:, scopes: of each peer, the room, its members, the ticket's queue, and the shared sets.
      expect(counts[holder]).toBeGreaterThan(15);
      expect(counts.filter((_, index) => index !== holder)).toEqual([0, 0]);
    } finally {
      for (const client of clients) client.disconnect();
      await store.close();
    }
  });

  it("refuses a key prefix without a hash tag, which would spread one state over several slots", () => {
    for (const keyPrefix of ["ps:", "ps{}:", "ps{:"]) {
      expect(() => new RedisStore({ endpoint: { mode: "cluster", seeds: cluster.seeds, password: "" }, keyPrefix })).toThrow(/hash tag/);
    }
  });
});

describe("RedisStore on a Redis Cluster while a master is down", () => {
  let own: RedisClusterControl;
  const opened: RedisStore[] = [];
  beforeAll(async () => {
    own = await startRedisCluster();
  });
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((store) => store.close()));
  });
  afterAll(async () => {
    await own?.stop();
  });

  async function ownStore(): Promise<{ store: RedisStore; holder: number }> {
    const keyPrefix = `{test-${uid()}}:`;
    const store = await openStore(own, keyPrefix);
    opened.push(store);
    return { store, holder: await masterOf(own, keyPrefix) };
  }

  it("the state's master dies: 503 at once and down; back empty: ready, reporting the lost state", async () => {
    const { store, holder } = await ownStore();
    const statuses: { status: RedisStatus; stateLost: boolean }[] = [];
    store.onStatusChange((status, details) => statuses.push({ status, ...details }));
    const before = await register(store, "node-a");

    await own.kill(holder);
    await expect.poll(() => store.isReady(), { timeout: 5_000 }).toBe(false);
    const failed = await codeAndTime(store.resolvePeer(before.fingerprint));
    expect(failed.code).toBe(503);
    expect(failed.elapsed).toBeLessThan(3_000);

    await own.restart(holder);
    await store.whenReady(10_000);
    expect(statuses).toEqual([
      { status: "down", stateLost: false },
      { status: "ready", stateLost: true },
    ]);
    expect(await store.resolvePeer(before.fingerprint)).toBeUndefined();
    const after = await register(store, "node-a", `alias-${uid()}`);
    expect((await store.resolvePeer(after.alias))?.fingerprint).toBe(after.fingerprint);
    expect((await store.stats()).totalPeers).toBe(1);
  });

  it("a store opened while the state's master is down is not ready, and becomes ready once it is back", async () => {
    const keyPrefix = `{test-${uid()}}:`;
    const holder = await masterOf(own, keyPrefix);
    await own.kill(holder);
    const store = new RedisStore({ endpoint: { mode: "cluster", seeds: own.seeds, password: "" }, keyPrefix });
    opened.push(store);
    await expect(store.whenReady(2_000)).rejects.toMatchObject({ code: 503 });
    await expect(register(store, "node-a")).rejects.toMatchObject({ code: 503 });

    await own.restart(holder);
    await store.whenReady(10_000);
    const peer = await register(store, "node-a");
    expect(await store.resolvePeer(peer.fingerprint)).toMatchObject({ fingerprint: peer.fingerprint });
  });

  it("another master dies: the state stays reachable and the store stays up", async () => {
    const { store, holder } = await ownStore();
    const statuses: RedisStatus[] = [];
    store.onStatusChange((status) => statuses.push(status));
    const peer = await register(store, "node-a");
    const other = (holder + 1) % own.seeds.length;

    await own.kill(other);
    try {
      // Long enough for the store to have noticed the lost node and read its state again.
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      expect(await store.resolvePeer(peer.fingerprint)).toMatchObject({ fingerprint: peer.fingerprint });
      expect(store.isReady()).toBe(true);
      expect(statuses).toEqual([]);
    } finally {
      await own.restart(other);
    }
  });
});
