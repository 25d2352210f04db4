import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/load.ts";
import { createLogger } from "../../src/observability/logger.ts";
import type { BackendHandlers } from "../../src/backends/backends.ts";
import { memoryBackends } from "../../src/backends/memory/memory-backends.ts";
import { MemoryStore } from "../../src/backends/memory/memory-store.ts";
import { createServer, type PeerServer } from "../../src/server.ts";
import { closeAll, registeredPeer, type ServerUrls, type TestPeer } from "../helpers/peers.ts";

/**
 * Two servers in this process share one state store, the way processes of a deployment share
 * Redis. Wiping the store and telling both servers at once that it came back empty is what a
 * Redis restart does, minus the timing: both restore the same peers' namespaces and rooms
 * concurrently, so every race between them is exercised on every run.
 */
const unique = (label: string): string => `${label}-${randomUUID().slice(0, 8)}`;

let store: MemoryStore;
let servers: PeerServer[] = [];
/** What each server gave its backends when it started: how the store tells it it is back. */
const handlers: BackendHandlers[] = [];
let urls: ServerUrls[] = [];
const peers: TestPeer[] = [];

beforeAll(async () => {
  store = new MemoryStore();
  const config = loadConfig({ env: {}, overrides: { host: "127.0.0.1", port: 0, log_level: "silent" } });
  // Both servers on one shared store (the store belongs to the test: closing a server leaves it).
  const shared = async (): Promise<ReturnType<typeof memoryBackends>> => ({
    ...memoryBackends(),
    store,
    attach: async (given) => void handlers.push(given),
    close: async () => undefined,
  });
  servers = [0, 1].map((index) => createServer(config, { logger: createLogger(config), nodeId: `recovery-${index}`, connectBackends: shared }));
  urls = [];
  for (const server of servers) {
    const address = await server.start();
    if (address === undefined) throw new Error("the server did not listen");
    urls.push({ http: `http://127.0.0.1:${address.port}`, ws: `ws://127.0.0.1:${address.port}/ws` });
  }
});

afterAll(async () => {
  closeAll(peers);
  await Promise.all(servers.map((server) => server.close()));
});

async function peerOn(index: number, transport: "ws" | "sio"): Promise<TestPeer> {
  const peer = await registeredPeer(urls[index] as ServerUrls, transport);
  peers.push(peer);
  return peer;
}

/** Empties the shared store, then both servers learn at the same moment that it is back with nothing in it. */
async function loseStateAndRecover(): Promise<void> {
  store.importSnapshot(new MemoryStore().exportSnapshot());
  await Promise.all(handlers.map((handler) => handler.storeRecovered(true, 0)));
}

describe("state lost and restored by several processes at once", () => {
  it("a room whose members sit on both processes comes back with all of them, its size and an owner", async () => {
    const roomId = unique("room");
    const owner = await peerOn(0, "ws");
    const member = await peerOn(1, "sio");
    const later = await peerOn(1, "ws");
    expect((await owner.request("create_room", { payload: { room_id: roomId, max_size: 3 } }, ["room_created"])).type).toBe("room_created");
    for (const joiner of [member, later]) expect((await joiner.request("join_room", { payload: { room_id: roomId } }, ["peer_list"])).type).toBe("peer_list");

    await loseStateAndRecover();

    const info = await owner.request("room_info", { payload: { room_id: roomId } }, ["room_info"]);
    expect(info).toMatchObject({ type: "room_info", payload: { room_id: roomId, peer_count: 3, max_size: 3 } });
    expect([owner.fingerprint, member.fingerprint, later.fingerprint]).toContain(info.payload?.["owner"]);
    // Members still reach each other only through the restored room (these two share a process:
    // the servers here have no adapter between them, only the store).
    member.send("signal", { to: later.fingerprint, payload: { sdp: "after the loss" } });
    expect(await later.next("signal")).toMatchObject({ from: member.fingerprint, payload: { sdp: "after the loss" } });
  });

  it("every namespace of a peer comes back, not only the first", async () => {
    const [first, second] = [unique("ns"), unique("ns")];
    const a = await peerOn(0, "sio");
    const b = await peerOn(1, "ws");
    for (const peer of [a, b]) {
      await peer.join(first);
      await peer.join(second);
    }

    await loseStateAndRecover();

    for (const namespace of [first, second]) {
      const list = await a.request("discover", { payload: { namespace } }, ["peer_list"]);
      expect(list.payload).toMatchObject({ namespace, total: 2 });
    }
  });
});
