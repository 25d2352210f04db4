import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { workerOf, workers } from "../helpers/cluster.ts";
import { io as ioClient } from "socket.io-client";
import { joinAtOnce } from "../helpers/join-race.ts";
import { closeAll, connectSio, registeredPeer, type TestPeer, type Transport } from "../helpers/peers.ts";
import { getJson, startServer, type ServerProcess } from "../helpers/server-process.ts";

describe.each([2, 4])("cluster with %i workers", (count) => {
  let server: ServerProcess;
  const open: TestPeer[] = [];
  const peer = async (transport: Transport, namespace?: string): Promise<TestPeer> => {
    const created = await registeredPeer(server, transport, { namespace });
    open.push(created);
    return created;
  };
  /** Two registered peers on different workers (candidates on the same worker are closed), both joined to `namespace`. */
  const crossWorkerPair = async (first: Transport, second: Transport, namespace: string): Promise<[TestPeer, TestPeer]> => {
    const a = await peer(first);
    const home = await workerOf(server, a.fingerprint);
    for (let attempt = 0; attempt < 16; attempt++) {
      const b = await peer(second);
      if ((await workerOf(server, b.fingerprint)) !== home) {
        await a.join(namespace);
        await b.join(namespace);
        return [a, b];
      }
      b.close();
    }
    throw new Error("could not place two peers on different workers");
  };

  beforeAll(async () => {
    server = await startServer({ env: { PEER_WORKERS: String(count) } });
  });
  afterAll(async () => {
    closeAll(open);
    await server.stop();
  });

  it("spreads peers over the workers, which share one peer list", async () => {
    const namespace = `spread-${count}`;
    const peers: TestPeer[] = [];
    for (let i = 0; i < count * 2; i++) peers.push(await peer(i % 2 === 0 ? "ws" : "sio", namespace));
    const view = await workers(server);
    expect(view).toHaveLength(count);
    expect(view.filter((worker) => worker.peers.some((fp) => peers.some((p) => p.fingerprint === fp))).length).toBeGreaterThanOrEqual(2);
    const last = peers[peers.length - 1] as TestPeer;
    const list = await last.request("discover", { payload: { namespace } }, ["peer_list"]);
    expect(list.payload?.["total"]).toBe(count * 2);
    const { body } = await getJson(`${server.http}/stats`);
    expect((body["namespaces"] as Record<string, number>)[namespace]).toBe(count * 2);
  });

  it("peers joining one namespace at the same moment on different workers learn of each other exactly once", async () => {
    const namespace = `race-${count}`;
    const peers: TestPeer[] = [];
    for (let i = 0; i < 24; i++) peers.push(await peer(i % 2 === 0 ? "ws" : "sio"));
    const homes = new Set((await workers(server)).filter((worker) => worker.peers.some((fp) => peers.some((p) => p.fingerprint === fp))).map((worker) => worker.node_id));
    expect(homes.size).toBeGreaterThanOrEqual(2);
    const outcome = await joinAtOnce(peers, namespace);
    expect(outcome.missing.flat()).toEqual([]);
    expect(outcome.announcedTwice.flat()).toEqual([]);
    expect(outcome.repeated.flat()).toEqual([]);
  });

  it("signal, relay and broadcast cross workers, raw-ws to Socket.IO and back", async () => {
    const [a, b] = await crossWorkerPair("ws", "sio", `cross-${count}`);
    await a.next("peer_joined");
    a.send("signal", { to: b.fingerprint, payload: { signal_type: "offer", sdp: "x" } });
    expect(await b.next("signal")).toMatchObject({ from: a.fingerprint, to: b.fingerprint, payload: { sdp: "x" } });
    b.send("relay", { to: a.alias, payload: { action: "move" } });
    expect(await a.next("relay")).toMatchObject({ from: b.fingerprint, payload: { action: "move" } });
    a.send("broadcast", { payload: { namespace: `cross-${count}`, data: 7 } });
    expect(await b.next("broadcast")).toMatchObject({ from: a.fingerprint, payload: { data: 7 } });
  });

  it("keeps the shared-namespace check across workers", async () => {
    const [a, b] = await crossWorkerPair("sio", "ws", `scoped-${count}`);
    b.send("leave", { payload: { namespace: `scoped-${count}` } });
    await b.request("ping", {}, ["pong"]); // requests are handled in order: the leave is done
    const reply = await a.request("signal", { to: b.fingerprint, payload: { signal_type: "offer" } });
    expect(reply.payload?.code).toBe(403);
  });

  it("rooms and kick work between workers", async () => {
    const room = `room-${count}`;
    const [owner, guest] = await crossWorkerPair("ws", "sio", `lobby-${count}`);
    expect((await owner.request("create_room", { payload: { room_id: room, max_size: 2 } }, ["room_created"])).type).toBe("room_created");
    const list = await guest.request("join_room", { payload: { room_id: room } }, ["peer_list"]);
    expect(list.payload?.["total"]).toBe(2);
    await owner.next((m) => m.type === "peer_joined" && m.namespace === room);
    owner.send("kick", { payload: { room_id: room, fingerprint: guest.fingerprint } });
    expect(await guest.next("kick")).toMatchObject({ from: owner.fingerprint, payload: { room_id: room, fingerprint: guest.fingerprint } });
    expect(await owner.next((m) => m.type === "peer_left" && m.namespace === room)).toMatchObject({ from: guest.fingerprint });
    const info = await guest.request("room_info", { payload: { room_id: room } }, ["room_info"]);
    expect(info.payload?.["peer_count"]).toBe(1);
  });

  it("matches a group whose members sit on different workers", async () => {
    const namespace = `match-${count}`;
    const [a, b] = await crossWorkerPair("ws", "sio", namespace);
    const waiting = await a.request("match", { payload: { namespace, group_size: 2, criteria: { mode: "duel" } } }, ["match"]);
    expect(waiting.payload?.["status"]).toBe("waiting");
    const direct = await b.request("match", { payload: { namespace, group_size: 2, criteria: { mode: "duel" } } }, ["matched"]);
    const event = await a.next("matched");
    expect(direct.payload?.["session_id"]).toBe(event.payload?.["session_id"]);
    expect((event.payload?.["peers"] as { fingerprint: string }[]).map((p) => p.fingerprint)).toEqual([a.fingerprint, b.fingerprint]);
  });

  it("reconnecting with the same key on another worker replaces the old connection", async () => {
    const namespace = `reconnect-${count}`;
    const [watcher, old] = await crossWorkerPair("sio", "ws", namespace);
    const oldHome = await workerOf(server, old.fingerprint);
    // Find a connection that landed on another worker: the worker whose connection count grew.
    let replacement: TestPeer | undefined;
    for (let attempt = 0; attempt < 16 && replacement === undefined; attempt++) {
      const before = await workers(server);
      const candidate = await connectSio(server.http);
      open.push(candidate);
      const after = await workers(server);
      const grew = after.find((w) => (w.connections["socket.io"] ?? 0) > (before.find((b) => b.node_id === w.node_id)?.connections["socket.io"] ?? 0));
      if (grew !== undefined && grew.node_id !== oldHome) replacement = candidate;
      else candidate.close();
    }
    if (replacement === undefined) throw new Error("no connection landed on another worker");
    expect((await replacement.register({ publicKey: old.publicKey })).type).toBe("registered");
    expect(await workerOf(server, replacement.fingerprint)).not.toBe(oldHome);
    const notice = await old.next("error");
    expect(notice.payload?.["close_code"]).toBe(4001);
    expect((await old.closed).code).toBe(4001);
    expect(await watcher.next("peer_left")).toMatchObject({ from: old.fingerprint });
    const list = await watcher.request("discover", { payload: { namespace } }, ["peer_list"]);
    expect(list.payload?.["total"]).toBe(1);
  });

  it("serves every long-polling request of a session on its worker, whichever worker accepted the connection", async () => {
    const handshake = await fetch(`${server.http}/socket.io/?EIO=4&transport=polling`);
    const open = JSON.parse((await handshake.text()).slice(1)) as { sid: string };
    // Each request comes on a new connection (the workers answer Connection: close) and lands on
    // either worker: one the session is not on would answer 400 "Session ID unknown".
    for (let request = 0; request < 20; request++) {
      const answer = await fetch(`${server.http}/socket.io/?EIO=4&transport=polling&sid=${open.sid}`, { method: "POST", body: "3" });
      expect([answer.status, await answer.text()]).toEqual([200, "ok"]);
    }
  });

  it("completes a polling-first Socket.IO upgrade through the router", async () => {
    for (let round = 0; round < 4; round++) {
      const socket = ioClient(server.http, { transports: ["polling", "websocket"], reconnection: false, forceNew: true });
      const upgraded = new Promise<string>((resolve) => socket.io.engine.once("upgrade", (transport: { name: string }) => resolve(transport.name)));
      await new Promise<void>((resolve, reject) => {
        socket.once("connect", () => resolve());
        socket.once("connect_error", reject);
      });
      // The upgrade event fires only for a session that started on polling and moved to websocket.
      expect(await upgraded).toBe("websocket");
      const pong = (await socket.timeout(5_000).emitWithAck("ping", {})) as { type: string; payload?: { code?: number } };
      expect(pong.payload?.code).toBe(400); // not registered yet: the answer still comes from the session's own worker
      const registered = (await socket.timeout(5_000).emitWithAck("register", { payload: { public_key: `poll-${count}-${round}` } })) as { type: string };
      expect(registered.type).toBe("registered");
      socket.disconnect();
    }
  });
});
