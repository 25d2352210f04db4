import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Envelope, TestPeer } from "../helpers/peers.ts";
import { alive, discover, isType, PeerPool, settled, startNodes, unique } from "../helpers/redis-nodes.ts";
import { startSentinelSetup, type SentinelSetup } from "../helpers/redis-sentinel.ts";
import { getJson, type ServerProcess } from "../helpers/server-process.ts";
import { waitFor } from "../helpers/wait.ts";

/*
 * A Sentinel failover under a deployment of two nodes (single processes A and B, redis_mode
 * sentinel, REDIS_ADDR listing the three sentinels). Peers on both nodes, over both transports,
 * signal each other across nodes in a loop while the master is SIGKILLed and the sentinels promote
 * the replica. A moment before the kill the replica is cut off from the master's writes, so what
 * is written in that moment (two registrations, two joins, the nodes' heartbeats) is missing on
 * the new master, as asynchronous replication can lose it: the nodes must notice and put it back.
 * The sentinels are held back until the heartbeats the replica has expired, as in a failover slowed
 * by a split vote: neither node may then take the other for dead.
 */

/**
 * Kill to promotion seen by every sentinel: 1 s to judge the master down, then a vote and the
 * promotion (a few seconds); a split vote is retried after twice the failover timeout (10 s).
 */
const FAILOVER_BOUND_MS = 30_000;
/** Promotion to nodes serving again with every peer listed. */
const RECOVERY_BOUND_MS = 15_000;
/** The longest any request may take while no master answers: the store fails fast (no queue, 1 s command timeout). */
const ANSWER_BOUND_MS = 2_500;
/** How long after the replica's last copy the sentinels may fail over: past the nodes' heartbeat ttl (6 s). */
const HELD_GAP_MS = 8_000;
/** The traffic loop's bounds: a pause between rounds, and at most this many rounds. */
const TRAFFIC_PAUSE_MS = 50;
const TRAFFIC_MAX_ROUNDS = 1_500;
// A closed peer departs at once (resume_grace 0): resume has its own tests (resume.test.ts).
const NO_RESUME = { resume_grace: 0 };

let sentinel: SentinelSetup;
let nodes: ServerProcess[] = [];
let A: ServerProcess;
let B: ServerProcess;
const pool = new PeerPool();

beforeAll(async () => {
  sentinel = await startSentinelSetup();
  nodes = await startNodes(sentinel, [{ config: NO_RESUME }, { config: NO_RESUME }]);
  [A, B] = nodes as [ServerProcess, ServerProcess];
}, 60_000);
afterAll(async () => {
  pool.closeAll();
  await Promise.all(nodes.map((node) => node.stop()));
  await sentinel?.stop();
});

/** How one signal of the traffic loop was answered: handled ("ok"), refused (with this error), or not at all. */
type Outcome = "ok" | { code: number; message: string } | "no answer";

interface Attempt {
  pair: string;
  n: number;
  /** When it was sent, and how long the sender waited for the outcome (ms). */
  at: number;
  ms: number;
  outcome: Outcome;
}

/**
 * Sends one signal and waits until the sender's node has handled it. Over Socket.IO the
 * acknowledgement says (within its 5 s timeout); over /ws a signal is answered only when refused,
 * so a ping follows it, whose pong comes once the signal was handled. The /ws wait is long: an
 * answer that came late must not be taken for the next signal's.
 */
async function signalOnce(from: TestPeer, to: TestPeer, payload: { pair: string; n: number }): Promise<Outcome> {
  try {
    if (from.transport === "sio") {
      const reply = await from.request("signal", { to: to.fingerprint, payload }, ["ok"]);
      return reply.type === "ok" ? "ok" : refusal(reply);
    }
    from.send("signal", { to: to.fingerprint, payload });
    from.send("ping");
    const reply = await from.next((message) => message.type === "pong" || (message.type === "error" && message.payload?.["ref"] === "signal"), FAILOVER_BOUND_MS);
    if (reply.type === "pong") return "ok";
    await from.next("pong", FAILOVER_BOUND_MS);
    return refusal(reply);
  } catch {
    return "no answer";
  }
}

const refusal = (reply: Envelope): Outcome => ({ code: Number(reply.payload?.code), message: String(reply.payload?.["message"]) });

/** Signals across nodes, every pair in each round, until stopped (or TRAFFIC_MAX_ROUNDS). */
function startTraffic(pairs: readonly (readonly [TestPeer, TestPeer])[]): {
  /** One label per pair, in the order given. */
  labels: string[];
  attempts: Attempt[];
  /** The numbers of the signals of `pair` that its receiver got. */
  delivered: (pair: string) => number[];
  stop: () => Promise<void>;
} {
  const attempts: Attempt[] = [];
  const label = ([from, to]: readonly [TestPeer, TestPeer]): string => `${from.transport}:${from.fingerprint.slice(0, 8)}->${to.transport}:${to.fingerprint.slice(0, 8)}`;
  const labels = pairs.map(label);
  const receivers = new Map(pairs.map((pair) => [label(pair), pair[1]]));
  let stopped = false;
  const running = (async () => {
    for (let n = 0; n < TRAFFIC_MAX_ROUNDS && !stopped; n++) {
      await Promise.all(
        pairs.map(async (pair) => {
          const at = Date.now();
          const outcome = await signalOnce(pair[0], pair[1], { pair: label(pair), n });
          attempts.push({ pair: label(pair), n, at, ms: Date.now() - at, outcome });
        }),
      );
      await new Promise((resolve) => setTimeout(resolve, TRAFFIC_PAUSE_MS));
    }
  })();
  return {
    labels,
    attempts,
    // `arrivals` keeps every message, whether or not a test took it.
    delivered: (pair) =>
      (receivers.get(pair)?.arrivals ?? []).flatMap((message) => (message.type === "signal" && message.payload?.["pair"] === pair ? [message.payload["n"] as number] : [])),
    async stop() {
      stopped = true;
      await running;
    },
  };
}

const health = async (node: ServerProcess): Promise<{ status: number; body: Record<string, unknown> }> => getJson(`${node.http}/health`);

describe("the Sentinel master dies mid-traffic", () => {
  it("requests get 503 in the gap; the nodes follow the promoted replica; every peer stays listed and reachable, writes the replica missed included", async () => {
    const ns = unique("failover-ns");
    const lateNs = unique("late-ns");
    const roomId = unique("failover-room");
    const alias = unique("seat_one").replace(/-/g, "_");
    // Traffic peers: each sends and receives only in the traffic loop until it stops.
    const aWs = await pool.on(A, "ws", { namespace: ns, alias, meta: { seat: 1 } });
    const aSio = await pool.on(A, "sio", { namespace: ns });
    const bWs = await pool.on(B, "ws", { namespace: ns });
    const bSio = await pool.on(B, "sio", { namespace: ns });
    // Observers: the test's own requests go through them.
    const aObserver = await pool.on(A, "sio", { namespace: ns });
    const bObserver = await pool.on(B, "ws", { namespace: ns });
    const leaver = await pool.on(B, "ws", { namespace: ns });
    // A room across nodes: a failover that kept it must keep its owner.
    expect((await aSio.request("create_room", { payload: { room_id: roomId, max_size: 4 } }, ["room_created"])).type).toBe("room_created");
    expect((await bSio.request("join_room", { payload: { room_id: roomId } }, ["peer_list"])).type).toBe("peer_list");
    expect((await discover(aObserver, ns)).total).toBe(7);

    const pairs = [
      [aWs, bWs],
      [bWs, aSio],
      [aSio, bSio],
      [bSio, aWs],
    ] as const;
    const traffic = startTraffic(pairs);
    /** Registered on the master alone: the replica that will be promoted never has them. */
    let lateA: TestPeer | undefined;
    let lateB: TestPeer | undefined;
    let killedAt = 0;
    try {
      await waitFor(
        () => traffic.labels.map((pair) => traffic.delivered(pair).length),
        (counts) => counts.every((count) => count >= 3),
        { timeoutMs: 10_000, intervalMs: 50, what: "signals to flow across nodes on every pair before the kill" },
      );

      await sentinel.stallReplication();
      const stalledAt = Date.now();
      lateA = await pool.on(A, "ws", { namespace: ns });
      lateB = await pool.on(B, "sio", { namespace: ns });
      for (const observer of [aObserver, bObserver]) expect((await observer.join(lateNs)).type).toBe("peer_list");

      await sentinel.holdFailover();
      await sentinel.killMaster();
      killedAt = Date.now();
      // Redis-backed requests are refused with 503, at once.
      for (const [observer, type, payload] of [
        [aObserver, "discover", { namespace: ns }],
        [bObserver, "join", { namespace: unique("in-the-gap") }],
      ] as const) {
        const asked = Date.now();
        const reply = await observer.request(type, { payload }, ["peer_list"]);
        expect(reply.payload, `${type} in the gap`).toMatchObject({ code: 503, ref: type });
        expect(Date.now() - asked).toBeLessThan(ANSWER_BOUND_MS);
      }
      for (const node of [A, B]) {
        const down = await waitFor(() => health(node), (reply) => reply.status === 503, { timeoutMs: 5_000, intervalMs: 50, what: `${node.http}/health to say Redis is down` });
        expect(down.body).toMatchObject({ status: "unavailable", backends: { redis: "down" } });
      }
      // A peer leaves while no master answers.
      leaver.close();
      await leaver.closed;
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, stalledAt + HELD_GAP_MS - Date.now())));
      for (const node of [A, B]) expect((await health(node)).status, "Redis is still down for the nodes").toBe(503);
      await sentinel.releaseFailover();

      const seen = await waitFor(
        () => Promise.all(sentinel.sentinelPorts.map((_, index) => sentinel.masterPortSeen(index))),
        (ports) => ports.every((port) => port === sentinel.replicaPort),
        { timeoutMs: FAILOVER_BOUND_MS, intervalMs: 100, what: "every sentinel to name the replica as master" },
      );
      expect(seen).toEqual([sentinel.replicaPort, sentinel.replicaPort, sentinel.replicaPort]);
      for (const node of [A, B]) {
        const up = await waitFor(() => health(node), (reply) => reply.status === 200, { timeoutMs: RECOVERY_BOUND_MS, intervalMs: 100, what: `${node.http}/health to say Redis is up` });
        expect(up.body).toMatchObject({ status: "ok", backends: { redis: "up" } });
      }

      // Every peer connected before the kill is listed, seen from both nodes: those the new master
      // never had too. The one that left in the gap is not, and its namespace heard it leave.
      const expected = [aWs, aSio, bWs, bSio, aObserver, bObserver, lateA, lateB].map((peer) => peer.fingerprint).sort();
      for (const observer of [aObserver, bObserver]) {
        const listed = await waitFor(
          () => discover(observer, ns),
          (page) => page.total === expected.length && [...page.fingerprints].sort().join() === expected.join(),
          { timeoutMs: RECOVERY_BOUND_MS, intervalMs: 100, what: `discover ${ns} to list the ${expected.length} connected peers` },
        );
        expect(listed.fingerprints).not.toContain(leaver.fingerprint);
        expect((await discover(observer, lateNs)).total).toBe(2);
      }
      expect(await aObserver.next(isType("peer_left", leaver.fingerprint, ns), RECOVERY_BOUND_MS)).toBeDefined();

      // Signals cross nodes again on every pair.
      const resumedAt = Date.now();
      await waitFor(
        () =>
          traffic.labels.map((pair) => {
            const handled = traffic.attempts.filter((attempt) => attempt.pair === pair && attempt.at >= resumedAt && attempt.outcome === "ok");
            const delivered = new Set(traffic.delivered(pair));
            return handled.filter((attempt) => delivered.has(attempt.n)).length;
          }),
        (deliveredSince) => deliveredSince.every((count) => count >= 3),
        { timeoutMs: RECOVERY_BOUND_MS, intervalMs: 100, what: "signals to be delivered again on every pair" },
      );
    } finally {
      await traffic.stop();
    }

    // The room kept its members and its owner; a peer keeps its alias and meta.
    expect(await aObserver.request("room_info", { payload: { room_id: roomId } }, ["room_info"])).toMatchObject({ payload: { peer_count: 2, owner: aSio.fingerprint, max_size: 4 } });
    const entry = ((await discover(bObserver, ns)).reply.payload?.["peers"] as { fingerprint: string; alias: string; meta: unknown }[]).find((peer) => peer.fingerprint === aWs.fingerprint);
    expect(entry).toMatchObject({ alias, meta: { seat: 1 } });

    // Peers the new master never had are reachable across nodes, by fingerprint and by alias.
    if (lateA === undefined || lateB === undefined) throw new Error("the late peers were not registered");
    lateA.send("signal", { to: lateB.fingerprint, payload: { sdp: "late A to late B" } });
    expect(await lateB.next("signal")).toMatchObject({ from: lateA.fingerprint, payload: { sdp: "late A to late B" } });
    lateB.send("relay", { to: alias, payload: { n: 1 } });
    expect(await aWs.next(isType("relay", lateB.fingerprint))).toMatchObject({ to: aWs.fingerprint, payload: { n: 1 } });
    bWs.send("signal", { to: lateA.fingerprint, payload: { sdp: "to late A" } });
    expect(await lateA.next("signal")).toMatchObject({ from: bWs.fingerprint });

    // A peer joining now, on either node, is listed with everyone.
    for (const node of [A, B]) {
      const fresh = await pool.on(node, node === A ? "sio" : "ws");
      const list = await fresh.join(ns);
      const listed = (list.payload?.["peers"] as { fingerprint: string }[]).map((peer) => peer.fingerprint);
      expect(listed).toEqual(expect.arrayContaining([aWs, aSio, bWs, bSio, aObserver, bObserver, lateA, lateB].map((peer) => peer.fingerprint)));
      expect(listed).not.toContain(leaver.fingerprint);
      fresh.close();
    }

    // No node crashed, and neither took the other for dead (its heartbeats missed the new master).
    for (const node of [A, B]) {
      expect(alive(node.process.pid)).toBe(true);
      expect(node.process.exitCode).toBeNull();
      expect(node.output.filter((line) => line.includes("removed a dead node's peers"))).toEqual([]);
    }
    await settled(bObserver);

    // While no master answered, every signal was answered at once, and every refusal was a 503.
    const sinceKill = (attempts: Attempt[]): unknown[] => attempts.map(({ at, ...attempt }) => ({ ...attempt, msAfterKill: at - killedAt }));
    const slow = traffic.attempts.filter((attempt) => attempt.outcome === "no answer" || attempt.ms > ANSWER_BOUND_MS);
    expect(sinceKill(slow), "signals that waited for the new master").toEqual([]);
    const refused = traffic.attempts.filter((attempt) => typeof attempt.outcome === "object");
    expect(refused.length, "the traffic met the gap").toBeGreaterThan(0);
    expect(sinceKill(refused.filter((attempt) => typeof attempt.outcome === "object" && attempt.outcome.code !== 503)), "refusals other than 503").toEqual([]);
  }, 90_000);
});
