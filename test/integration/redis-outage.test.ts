import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { alive, deploymentWorkers, discover, freePort, isType, PeerPool, settled, startNode, startNodes, unique } from "../helpers/redis-nodes.ts";
import { startRedisServer, type RedisServer } from "../helpers/redis-server.ts";
import { getJson, type ServerProcess } from "../helpers/server-process.ts";
import { waitFor } from "../helpers/wait.ts";

/*
 * Failures of a deployment of three nodes on one private redis-server: A and B are single
 * processes (B on a fixed port, so that it can be restarted on its old address), C has two cluster
 * workers. The tests run in order on the same deployment: node A is SIGKILLed and a new node
 * started in its place, node B is SIGKILLed and restarted on its port at once, then Redis itself
 * is SIGKILLed and restarted (empty).
 */

/** The bound: a dead node's peers are gone cluster-wide within this. */
const NODE_DEATH_BOUND_MS = 10_000;
/** How long nodes may take to notice Redis is back and restore their peers. */
const RECOVERY_BOUND_MS = 15_000;
/** How long Redis stays down. */
const OUTAGE_MS = 4_000;

let redis: RedisServer;
/** Every node process started, for the final stop. */
const started: ServerProcess[] = [];
let A: ServerProcess;
let B: ServerProcess;
let C: ServerProcess;
let portB = 0;
const pool = new PeerPool();
// A closed peer departs at once here (resume_grace 0): resume has its own tests (resume.test.ts).
const NO_RESUME = { resume_grace: 0 };

beforeAll(async () => {
  redis = await startRedisServer();
  portB = await freePort();
  // In this order: B is the last single-process node started on this host.
  started.push(...(await startNodes(redis, [{ config: NO_RESUME }, { port: portB, config: NO_RESUME }, { workers: 2, config: NO_RESUME }])));
  [A, B, C] = started as [ServerProcess, ServerProcess, ServerProcess];
});
afterAll(async () => {
  pool.closeAll();
  await Promise.all(started.map((node) => node.stop()));
  await redis?.stop();
});

const within = (deadline: number): number => Math.max(1, deadline - Date.now());

/** The `peersRemoved` figures a node logged for the dead nodes it cleaned up after. */
const removals = (node: ServerProcess): { node: string; peersRemoved: number }[] =>
  node.output.flatMap((line) => {
    try {
      const entry = JSON.parse(line) as { node?: unknown; peersRemoved?: unknown };
      return typeof entry.node === "string" && typeof entry.peersRemoved === "number" ? [{ node: entry.node, peersRemoved: entry.peersRemoved }] : [];
    } catch {
      return [];
    }
  });

describe("a node dies", () => {
  it("SIGKILL of a node: within the bound its peers leave every namespace and room on the other nodes, totals drop, its room passes on", async () => {
    const ns = unique("death-ns");
    const roomId = unique("death-room");
    const deadWs = await pool.on(A, "ws", { namespace: ns });
    const deadSio = await pool.on(A, "sio", { namespace: ns });
    expect((await deadWs.request("create_room", { payload: { room_id: roomId } }, ["room_created"])).type).toBe("room_created");
    const onB = await pool.on(B, "sio", { namespace: ns });
    const onC = await pool.on(C, "ws", { namespace: ns });
    await onB.request("join_room", { payload: { room_id: roomId } }, ["peer_list"]);
    await onC.request("join_room", { payload: { room_id: roomId } }, ["peer_list"]);
    for (const observer of [onB, onC]) expect((await discover(observer, ns)).total).toBe(4);

    A.process.kill("SIGKILL");
    const deadline = Date.now() + NODE_DEATH_BOUND_MS;
    await A.exited;
    for (const observer of [onB, onC]) {
      for (const dead of [deadWs, deadSio]) expect(await observer.next(isType("peer_left", dead.fingerprint, ns), within(deadline))).toBeDefined();
      expect(await observer.next(isType("peer_left", deadWs.fingerprint, roomId), within(deadline))).toBeDefined();
    }
    // Announced once, not by every surviving node.
    expect(await onB.nothing(isType("peer_left", deadWs.fingerprint, ns), 500)).toBe(true);
    for (const observer of [onB, onC]) expect(await discover(observer, ns)).toMatchObject({ total: 2, fingerprints: [onB.fingerprint, onC.fingerprint] });
    const stats = await getJson(`${B.http}/stats`);
    expect((stats.body["namespaces"] as Record<string, number>)[ns]).toBe(2);
    // The room went to the earliest member left, on B; the dead peers cannot be reached any more.
    expect(await onC.request("room_info", { payload: { room_id: roomId } }, ["room_info"])).toMatchObject({ payload: { peer_count: 2, owner: onB.fingerprint } });
    expect((await onC.request("signal", { to: deadSio.fingerprint, payload: { sdp: "x" } }, ["ok"])).payload).toMatchObject({ code: 404 });
    expect((await onB.request("relay", { to: deadWs.alias, payload: { x: 1 } }, ["ok"])).payload).toMatchObject({ code: 404 });
    // The survivors still reach each other.
    onB.send("signal", { to: onC.fingerprint, payload: { sdp: "still here" } });
    expect(await onC.next("signal")).toMatchObject({ from: onB.fingerprint, payload: { sdp: "still here" } });
  }, 30_000);

  it("a new node started afterwards on this host sees the world and is seen, and leaves the live nodes' peers alone", async () => {
    const ns = unique("rejoin-ns");
    const onB = await pool.on(B, "ws", { namespace: ns });
    const onC = await pool.on(C, "sio", { namespace: ns });
    const A2 = await startNode(redis, { config: NO_RESUME });
    started.push(A2);
    A = A2;
    const workersSeen = await waitFor(
      () => deploymentWorkers(A2),
      (list) => list.length === 4,
      { timeoutMs: 5_000, intervalMs: 100, what: "the new node to see the 4 workers of the deployment" },
    );
    expect(workersSeen.map((worker) => worker.pid)).toContain(A2.process.pid);
    const fresh = await pool.on(A2, "ws");
    const list = await fresh.join(ns);
    expect((list.payload?.["peers"] as { fingerprint: string }[]).map((peer) => peer.fingerprint)).toEqual([onB.fingerprint, onC.fingerprint, fresh.fingerprint]);
    expect(list.payload?.["total"]).toBe(3);
    for (const other of [onB, onC]) expect(await other.next(isType("peer_joined", fresh.fingerprint, ns))).toBeDefined();
    fresh.send("signal", { to: onB.fingerprint, payload: { sdp: "from the new node" } });
    expect(await onB.next("signal")).toMatchObject({ from: fresh.fingerprint, payload: { sdp: "from the new node" } });
    onC.send("relay", { to: fresh.alias, payload: { hello: "new node" } });
    expect(await fresh.next("relay")).toMatchObject({ from: onC.fingerprint, payload: { hello: "new node" } });
    // Starting a node never removes the peers of nodes that are alive.
    expect(await onC.nothing(isType("peer_left", onB.fingerprint), 300)).toBe(true);
    expect((await discover(onC, ns)).total).toBe(3);
    expect(removals(A2)).toEqual([]);
  }, 30_000);

  it("a node SIGKILLed and restarted on its address at once cleans up after its earlier self, and serves again", async () => {
    const ns = unique("restart-ns");
    const roomId = unique("restart-room");
    const deadWs = await pool.on(B, "ws", { namespace: ns });
    const deadSio = await pool.on(B, "sio", { namespace: ns });
    const onA = await pool.on(A, "sio", { namespace: ns });
    const onC = await pool.on(C, "ws", { namespace: ns });
    expect((await deadSio.request("create_room", { payload: { room_id: roomId } }, ["room_created"])).type).toBe("room_created");
    await onA.request("join_room", { payload: { room_id: roomId } }, ["peer_list"]);
    const oldNode = (await deploymentWorkers(C)).find((worker) => worker.pid === B.process.pid);
    expect(oldNode?.peers).toContain(deadWs.fingerprint); // and the peers earlier tests left on B

    B.process.kill("SIGKILL");
    const deadline = Date.now() + NODE_DEATH_BOUND_MS;
    await B.exited;
    const B2 = await startNode(redis, { port: portB, config: NO_RESUME });
    started.push(B2);
    B = B2;
    expect(B2.port).toBe(portB);
    for (const observer of [onA, onC]) {
      for (const dead of [deadWs, deadSio]) expect(await observer.next(isType("peer_left", dead.fingerprint, ns), within(deadline))).toBeDefined();
    }
    expect(await onA.next(isType("peer_left", deadSio.fingerprint, roomId), within(deadline))).toBeDefined();
    // The new process did it, as soon as it started (the old heartbeat had not expired yet).
    expect(removals(B2)).toEqual([{ node: oldNode?.node_id, peersRemoved: oldNode?.peers.length }]);
    expect(await onA.nothing(isType("peer_left", deadWs.fingerprint, ns), 300)).toBe(true);
    expect(await discover(onA, ns)).toMatchObject({ total: 2, fingerprints: [onA.fingerprint, onC.fingerprint] });
    expect(await onA.request("room_info", { payload: { room_id: roomId } }, ["room_info"])).toMatchObject({ payload: { peer_count: 1, owner: onA.fingerprint } });
    // Clients connect to the same address again and are in the same world.
    const back = await pool.on(B2, "sio", { publicKey: deadSio.publicKey });
    expect(back.fingerprint).toBe(deadSio.fingerprint);
    expect((await back.join(ns)).payload?.["total"]).toBe(3);
    back.send("signal", { to: onC.fingerprint, payload: { sdp: "back" } });
    expect(await onC.next("signal")).toMatchObject({ from: back.fingerprint, payload: { sdp: "back" } });
  }, 30_000);
});

describe("Redis dies and comes back empty", () => {
  it("no node crashes; /health and /readyz turn 503; Redis-backed requests get 503 while local ones answer; after the restart every node is ready and its peers are back", async () => {
    const ns = unique("outage-ns");
    const roomId = unique("outage-room");
    const alias = unique("outage_alias").replace(/-/g, "_");
    const p1 = await pool.on(A, "ws", { namespace: ns, alias, meta: { seat: 1 } });
    const p2 = await pool.on(B, "sio", { namespace: ns });
    const p3 = await pool.on(C, "ws", { namespace: ns });
    const p4 = await pool.on(C, "sio", { namespace: ns });
    const leaver = await pool.on(B, "ws", { namespace: ns });
    // Room-only members on two nodes: the room must come back for them to reach each other.
    expect((await p2.request("create_room", { payload: { room_id: roomId, max_size: 5 } }, ["room_created"])).type).toBe("room_created");
    const roomOnly = await pool.on(A, "sio");
    await roomOnly.request("join_room", { payload: { room_id: roomId } }, ["peer_list"]);
    expect((await discover(p3, ns)).total).toBe(5);
    const workerPids = (await deploymentWorkers(B)).map((worker) => worker.pid);
    expect(workerPids).toHaveLength(4);

    await redis.kill();
    const downSince = Date.now();
    for (const node of [A, B, C]) {
      const readyz = await waitFor(
        () => getJson(`${node.http}/readyz`),
        (reply) => reply.status === 503,
        { timeoutMs: 5_000, intervalMs: 100, what: `${node.http}/readyz to answer 503 with Redis down` },
      );
      expect(readyz).toMatchObject({ status: 503, body: { ready: false, backends: { redis: "down" } } });
      const health = await getJson(`${node.http}/health`);
      expect(health).toMatchObject({ status: 503, body: { status: "unavailable", backends: { redis: "down" } } });
    }
    // A request needing Redis is refused with 503 on every node; a local one still answers.
    for (const peer of [p1, p2, p3]) {
      expect((await peer.request("join", { payload: { namespace: unique("during-outage") } }, ["peer_list"])).payload).toMatchObject({ code: 503, ref: "join" });
      expect((await peer.request("ping", {}, ["pong"])).type).toBe("pong");
    }
    expect((await p1.request("discover", { payload: { namespace: ns } }, ["peer_list"])).payload).toMatchObject({ code: 503 });
    // A peer disconnects while Redis is down.
    leaver.close();
    await leaver.closed;
    for (const pid of [A.process.pid, B.process.pid, C.process.pid, ...workerPids]) expect(alive(pid)).toBe(true);
    expect([A.process.exitCode, B.process.exitCode, C.process.exitCode]).toEqual([null, null, null]);

    // Down for a while: long enough for every client's reconnection backoff to reach its cap.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, OUTAGE_MS - (Date.now() - downSince))));
    await redis.restart();
    for (const node of [A, B, C]) {
      const readyz = await waitFor(
        () => getJson(`${node.http}/readyz`),
        (reply) => reply.status === 200,
        { timeoutMs: RECOVERY_BOUND_MS, intervalMs: 100, what: `${node.http}/readyz to answer 200 with Redis back` },
      );
      expect(readyz).toMatchObject({ status: 200, body: { ready: true } });
      expect((await getJson(`${node.http}/health`)).body).toMatchObject({ status: "ok" });
    }
    // Every connected peer is registered again and back in its namespace, seen from every node;
    // the peer that left during the outage is not.
    const expected = [p1, p2, p3, p4].map((peer) => peer.fingerprint).sort();
    for (const observer of [p1, p2, p3]) {
      const seen = await waitFor(
        () => discover(observer, ns),
        (page) => page.total === 4,
        { timeoutMs: RECOVERY_BOUND_MS, intervalMs: 100, what: `discover ${ns} to list the 4 connected peers again` },
      );
      expect([...seen.fingerprints].sort()).toEqual(expected);
    }
    expect(await p1.next(isType("peer_left", leaver.fingerprint, ns), RECOVERY_BOUND_MS)).toBeDefined();
    const entry = ((await discover(p4, ns)).reply.payload?.["peers"] as { fingerprint: string; alias: string; meta: unknown }[]).find((peer) => peer.fingerprint === p1.fingerprint);
    expect(entry).toMatchObject({ alias, meta: { seat: 1 } });
    // Signals cross nodes again, by fingerprint and by the restored alias.
    p2.send("signal", { to: p1.fingerprint, payload: { sdp: "after outage" } });
    expect(await p1.next("signal")).toMatchObject({ from: p2.fingerprint, payload: { sdp: "after outage" } });
    p3.send("relay", { to: alias, payload: { n: 1 } });
    expect(await p1.next("relay")).toMatchObject({ from: p3.fingerprint, to: p1.fingerprint, payload: { n: 1 } });
    p1.send("signal", { to: p4.fingerprint, payload: { sdp: "to C" } });
    expect(await p4.next("signal")).toMatchObject({ from: p1.fingerprint });
    p4.send("broadcast", { payload: { namespace: ns, data: "back" } });
    for (const member of [p1, p2, p3]) expect(await member.next("broadcast")).toMatchObject({ from: p4.fingerprint, payload: { data: "back" } });
    // The room is back with both members (each node restores its own members, within the same
    // bound); they reach each other only through it.
    const roomBack = await waitFor(
      () => roomOnly.request("room_info", { payload: { room_id: roomId } }, ["room_info"]),
      (reply) => reply.payload?.["peer_count"] === 2,
      { timeoutMs: RECOVERY_BOUND_MS, intervalMs: 100, what: `room ${roomId} to have its 2 members back` },
    );
    expect(roomBack).toMatchObject({ payload: { room_id: roomId, peer_count: 2, max_size: 5 } });
    roomOnly.send("signal", { to: p2.fingerprint, payload: { sdp: "room" } });
    expect(await p2.next("signal")).toMatchObject({ from: roomOnly.fingerprint, payload: { sdp: "room" } });
    // Redis-backed requests work again.
    expect((await p3.join(unique("after-outage"))).type).toBe("peer_list");
    await settled(p4);
  }, 45_000);
});

