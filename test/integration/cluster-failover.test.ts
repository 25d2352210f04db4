import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { workerOf, workers, type WorkerView } from "../helpers/cluster.ts";
import { closeAll, registeredPeer, type Envelope, type TestPeer, type Transport } from "../helpers/peers.ts";
import { getJson, startServer, type ServerProcess } from "../helpers/server-process.ts";
import { waitFor } from "../helpers/wait.ts";

/** How long the cluster may take to notice a dead worker, clean up after it and replace it. */
const FAILOVER_BOUND_MS = 10_000;

/**
 * Two workers. The tests run in order on one server: a worker is killed and replaced, then the
 * primary is stopped with SIGTERM (the last test ends the server).
 */
describe("cluster failover and shutdown (2 workers)", () => {
  let server: ServerProcess;
  const open: TestPeer[] = [];

  beforeAll(async () => {
    // A closed peer departs at once here (resume_grace 0): resume has its own tests (resume.test.ts).
    server = await startServer({ env: { PEER_WORKERS: "2" }, config: { resume_grace: 0 } });
  });
  afterAll(async () => {
    closeAll(open);
    await server.stop();
  });

  const unique = (label: string): string => `${label}-${randomUUID().slice(0, 8)}`;

  const peer = async (transport: Transport, options: { alias?: string; publicKey?: string } = {}): Promise<TestPeer> => {
    const created = await registeredPeer(server, transport, options);
    open.push(created);
    return created;
  };

  /** A registered peer on the given worker: candidates that land elsewhere are closed. */
  async function peerOn(transport: Transport, nodeId: string): Promise<TestPeer> {
    for (let attempt = 0; attempt < 16; attempt++) {
      const candidate = await peer(transport);
      if ((await workerOf(server, candidate.fingerprint)) === nodeId) return candidate;
      candidate.close();
    }
    throw new Error(`could not place a ${transport} peer on ${nodeId}`);
  }

  const isPeerLeft = (from: string, scope: string) => (message: Envelope) =>
    message.type === "peer_left" && message.from === from && message.namespace === scope;

  /**
   * /stats as one given worker answers it: the router sends a request whose query carries
   * `sid=w<index>-...` to that worker (the rule that keeps Engine.IO sessions on their worker).
   */
  /** The worker slot of a node id (`<machine>.w<index>-<pid>-<random>`), e.g. "w1". */
  const slotOf = (nodeId: string): string => /\.(w\d+)-/.exec(nodeId)?.[1] ?? "?";
  const workersAsSeenBy = async (nodeId: string): Promise<WorkerView[]> => {
    const index = slotOf(nodeId);
    const { body } = await getJson(`${server.http}/stats?sid=${index}-probe`);
    return body["workers"] as WorkerView[];
  };

  const totalPeers = async (): Promise<number> => (await getJson(`${server.http}/stats`)).body["total_peers"] as number;

  /** Whether a process with this pid still exists. */
  const alive = (pid: number): boolean => {
    try {
      process.kill(pid, 0);
      return true;
    } catch (error) {
      return (error as NodeJS.ErrnoException).code === "EPERM";
    }
  };

  it("a killed worker's peers leave every shared scope once, its room passes on, and it is replaced", async () => {
    const [victim, survivor] = (await workers(server)) as [WorkerView, WorkerView];
    expect(victim.node_id).toMatch(/\.w\d+-/);
    const namespace = unique("failover-ns");
    const room = unique("failover-room");

    const deadWs = await peerOn("ws", victim.node_id);
    const deadSio = await peerOn("sio", victim.node_id);
    const liveWs = await peerOn("ws", survivor.node_id);
    const liveSio = await peerOn("sio", survivor.node_id);
    const dead = [deadWs, deadSio];
    const live = [liveWs, liveSio];

    // The room is owned by a peer on the doomed worker; the earliest surviving member is liveWs.
    for (const p of [deadWs, deadSio, liveWs, liveSio]) expect((await p.join(namespace)).type).toBe("peer_list");
    expect((await deadWs.request("create_room", { payload: { room_id: room, max_size: 5 } }, ["room_created"])).type).toBe("room_created");
    for (const p of [deadSio, liveWs, liveSio]) expect((await p.request("join_room", { payload: { room_id: room } }, ["peer_list"])).type).toBe("peer_list");
    // Every membership is visible to the survivors before the kill.
    for (const p of live) {
      const list = await p.request("room_info", { payload: { room_id: room } }, ["room_info"]);
      expect(list.payload).toMatchObject({ peer_count: 4, owner: deadWs.fingerprint });
    }
    const before = await totalPeers();

    process.kill(victim.pid, "SIGKILL");

    // The dead worker's own clients lose their connections.
    await Promise.all(dead.map((p) => p.closed));

    // Each survivor hears exactly one peer_left per shared scope for each dead peer.
    for (const p of live) {
      for (const gone of dead) {
        for (const scope of [namespace, room]) {
          expect(await p.next(isPeerLeft(gone.fingerprint, scope), FAILOVER_BOUND_MS)).toMatchObject({ from: gone.fingerprint, namespace: scope });
        }
      }
    }
    for (const p of live) {
      expect(await p.nothing((message) => message.type === "peer_left", 500)).toBe(true);
    }

    const after = await waitFor(totalPeers, (total) => total === before - 2, {
      timeoutMs: FAILOVER_BOUND_MS,
      intervalMs: 100,
      what: `the peer count to drop from ${before} to ${before - 2}`,
    });
    expect(after).toBe(before - 2);

    // Room ownership passed to the earliest surviving member; lists hold only survivors.
    for (const p of live) {
      const info = await p.request("room_info", { payload: { room_id: room } }, ["room_info"]);
      expect(info.payload).toMatchObject({ peer_count: 2, owner: liveWs.fingerprint });
      const list = await p.request("discover", { payload: { namespace } }, ["peer_list"]);
      expect(list.payload?.["total"]).toBe(2);
    }
    // The dead peers are unknown now: a signal to them is 404, not delivered to a ghost.
    const toGhost = await liveSio.request("signal", { to: deadWs.fingerprint, payload: { signal_type: "offer" } });
    expect(toGhost.payload?.code).toBe(404);
    // The new owner has the owner's rights.
    liveWs.send("kick", { payload: { room_id: room, fingerprint: liveSio.fingerprint } });
    expect(await liveSio.next("kick")).toMatchObject({ from: liveWs.fingerprint, payload: { room_id: room, fingerprint: liveSio.fingerprint } });
    expect(await liveWs.next(isPeerLeft(liveSio.fingerprint, room))).toBeDefined();

    // The worker is replaced: same index, new process.
    const index = slotOf(victim.node_id);
    const replaced = await waitFor(
      () => workers(server),
      (view) => view.length === 2 && view.some((w) => slotOf(w.node_id) === index && w.pid !== victim.pid),
      { timeoutMs: FAILOVER_BOUND_MS, intervalMs: 100, what: `worker slot ${index} to run a new process` },
    );
    const replacement = replaced.find((w) => slotOf(w.node_id) === index);
    expect(replacement?.pid).toBeDefined();
    expect(replacement?.pid).not.toBe(victim.pid);
    expect(replaced.map((w) => w.node_id)).toContain(survivor.node_id);
    // The surviving worker sees the same two workers at once (it must not keep waiting for the dead one).
    expect((await workersAsSeenBy(survivor.node_id)).map((w) => w.pid).sort()).toEqual(replaced.map((w) => w.pid).sort());
    expect(alive(victim.pid)).toBe(false);

    // The dead peers' aliases and keys register again (a new key may take a dead alias), and rejoin.
    const reborn = await peer("ws", { alias: deadWs.alias });
    expect(reborn.alias).toBe(deadWs.alias);
    const rebornSio = await peer("sio", { publicKey: deadSio.publicKey, alias: deadSio.alias });
    expect(rebornSio.fingerprint).toBe(deadSio.fingerprint);
    expect(rebornSio.alias).toBe(deadSio.alias);
    expect((await rebornSio.join(namespace)).payload?.["total"]).toBe(3);
    for (const p of live) {
      expect(await p.next((m) => m.type === "peer_joined" && m.from === deadSio.fingerprint && m.namespace === namespace)).toBeDefined();
    }
  });

  it("after a failover, register, join and signal work between the new worker and the old one", async () => {
    const view = await workers(server);
    expect(view).toHaveLength(2);
    const namespace = unique("after-failover");
    const [first, second] = view as [WorkerView, WorkerView];
    const pairs: [Transport, Transport][] = [
      ["ws", "sio"],
      ["sio", "ws"],
    ];
    for (const [ta, tb] of pairs) {
      const a = await peerOn(ta, first.node_id);
      const b = await peerOn(tb, second.node_id);
      const list = await a.join(namespace);
      expect(list.type).toBe("peer_list");
      const joined = await b.join(namespace);
      expect((joined.payload?.["peers"] as { fingerprint: string }[]).map((p) => p.fingerprint)).toContain(a.fingerprint);
      expect(await a.next((m) => m.type === "peer_joined" && m.from === b.fingerprint)).toBeDefined();
      a.send("signal", { to: b.fingerprint, payload: { signal_type: "offer", sdp: "a" } });
      expect(await b.next("signal")).toMatchObject({ from: a.fingerprint, to: b.fingerprint, payload: { signal_type: "offer", sdp: "a" } });
      b.send("signal", { to: a.alias, payload: { signal_type: "answer", sdp: "b" } });
      expect(await a.next("signal")).toMatchObject({ from: b.fingerprint, to: a.fingerprint, payload: { signal_type: "answer", sdp: "b" } });
    }
  });

  it("SIGTERM to the primary closes every connection with 1001 after a notice, stops the workers and exits 0", async () => {
    const view = await workers(server);
    const pids = view.map((w) => w.pid);
    expect(pids).toHaveLength(2);
    const clients: TestPeer[] = [];
    for (const w of view) {
      clients.push(await peerOn("ws", w.node_id), await peerOn("sio", w.node_id));
    }
    const ws = clients.filter((c) => c.transport === "ws");
    const sio = clients.filter((c) => c.transport === "sio");

    server.process.kill("SIGTERM");

    for (const client of ws) {
      const notice = await client.next("error", FAILOVER_BOUND_MS);
      expect(notice.payload?.["close_code"]).toBe(1001);
      expect((await client.closed).code).toBe(1001);
    }
    for (const client of sio) {
      const notice = await client.next("error", FAILOVER_BOUND_MS);
      expect(notice.payload?.["close_code"]).toBe(1001);
      expect((await client.closed).code).toBe("io server disconnect");
    }
    const code = await Promise.race([
      server.exited,
      new Promise<string>((resolve) => setTimeout(() => resolve("still running"), FAILOVER_BOUND_MS)),
    ]);
    expect(code).toBe(0);
    for (const pid of pids) expect(alive(pid), `worker ${pid} is still running`).toBe(false);
  });
});
