import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { workerOf } from "../helpers/cluster.ts";
import { closeAll, connect, registeredPeer, type Envelope, type TestPeer, type Transport } from "../helpers/peers.ts";
import { startNodes, unique } from "../helpers/redis-nodes.ts";
import { startRedisServer, type RedisServer } from "../helpers/redis-server.ts";
import { startServer, type ServerProcess } from "../helpers/server-process.ts";

/**
 * A key's message budget outlives its connections, and registrations per key are limited, in
 * every mode: one process, the workers of one machine, nodes sharing Redis. A client that
 * reconnects in a loop gets no more through than one connection that never left would.
 */

const PER_SEC = 20;
const BURST = 40;
const CONFIG = { rate_limit_per_sec: PER_SEC, rate_limit_burst: BURST };
/** Bounds of the reconnect loop. */
const MAX_RECONNECTS = 40;
const MAX_LOOP_MS = 5_000;
/** Pause between two connections, so the loop spans a few refills. */
const PAUSE_MS = 50;
/** Broadcasts each connection sends back to back: more than a full bucket. */
const SENDS_PER_CONNECTION = BURST + 10;
/** Slack for the difference between the client's clock and when the server handled each message. */
const MARGIN = PER_SEC * 0.25 + 2;

interface Deployment {
  /** Where the reconnecting client connects, in turn. */
  readonly entries: readonly ServerProcess[];
  /** 2-worker cluster: which worker holds a fingerprint. */
  readonly workerOf?: (fingerprint: string) => Promise<string | undefined>;
  stop(): Promise<void>;
}

const MODES: readonly { name: string; start: () => Promise<Deployment> }[] = [
  {
    name: "one process",
    async start() {
      const server = await startServer({ config: CONFIG });
      return { entries: [server], stop: async () => void (await server.stop()) };
    },
  },
  {
    name: "a 2-worker cluster",
    async start() {
      const server = await startServer({ config: CONFIG, env: { PEER_WORKERS: "2" } });
      return { entries: [server], workerOf: (fingerprint) => workerOf(server, fingerprint), stop: async () => void (await server.stop()) };
    },
  },
  {
    name: "two nodes sharing Redis",
    async start() {
      const redis: RedisServer = await startRedisServer();
      try {
        const nodes = await startNodes(redis, [{ config: CONFIG }, { config: CONFIG }]);
        return {
          entries: nodes,
          async stop() {
            await Promise.all(nodes.map((node) => node.stop()));
            await redis.stop();
          },
        };
      } catch (error) {
        await redis.stop();
        throw error;
      }
    },
  },
];

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const transportOf = (attempt: number): Transport => (Math.floor(attempt / 2) % 2 === 0 ? "ws" : "sio");

/** Sends a ping and waits for its answer (pong, or 429): every message sent before it has been handled. */
async function handled(peer: TestPeer): Promise<void> {
  if (peer.transport === "sio") {
    await peer.request("ping");
    return;
  }
  const answer = peer.next((m: Envelope) => m.type === "pong" || (m.type === "error" && m.payload?.["ref"] === "ping"));
  peer.send("ping");
  await answer;
}

describe.each(MODES)("rate budgets across reconnects: $name", ({ start }) => {
  let deployment: Deployment;
  const open: TestPeer[] = [];

  beforeAll(async () => {
    deployment = await start();
  });
  afterAll(async () => {
    closeAll(open);
    await deployment?.stop();
  });

  /**
   * One key connects MAX_RECONNECTS times (or for MAX_LOOP_MS), spread over the entries; each
   * connection registers, joins, sends more broadcasts than a full bucket holds, then either
   * closes before the next one connects, or stays open and is replaced by it (409, closed by the
   * server): its budget must then be handed over as it closes.
   */
  async function hop(mode: "reconnect" | "replace"): Promise<void> {
    const { entries } = deployment;
    const namespace = unique(mode);
    const receiver = await registeredPeer(entries[0] as ServerProcess, "ws", { namespace });
    open.push(receiver);
    const publicKey = `${mode}-${randomUUID()}`;
    let fingerprint = "";
    const homes = new Set<string>();
    let registered = 0;
    let refusedRegistrations = 0;
    let limited = 0;
    let slowestRegisterMs = 0;
    let previous: TestPeer | undefined;

    const started = performance.now();
    let attempt = 0;
    for (; attempt < MAX_RECONNECTS && performance.now() - started < MAX_LOOP_MS; attempt++) {
      const peer = await connect(entries[attempt % entries.length] as ServerProcess, transportOf(attempt));
      open.push(peer);
      const asked = performance.now();
      const reply = await peer.register({ publicKey });
      slowestRegisterMs = Math.max(slowestRegisterMs, performance.now() - asked);
      if (reply.type === "registered") {
        registered++;
        fingerprint = peer.fingerprint;
        const home = await deployment.workerOf?.(fingerprint);
        if (home !== undefined) homes.add(home);
        await peer.join(namespace);
        for (let n = 0; n < SENDS_PER_CONNECTION; n++) peer.send("broadcast", { payload: { namespace, data: { n } } });
        await handled(peer);
        limited += peer.received.filter((m) => m.type === "error" && m.payload?.code === 429).length;
        if (mode === "replace" && previous !== undefined) {
          // The server closed it for the newer connection.
          await previous.closed;
        }
      } else {
        expect(reply.payload?.code, JSON.stringify(reply)).toBe(429);
        refusedRegistrations++;
      }
      if (mode === "reconnect" || reply.type !== "registered") {
        peer.close();
        await peer.closed;
      } else {
        previous = peer;
      }
      await sleep(PAUSE_MS);
    }
    const elapsedSec = (performance.now() - started) / 1_000;
    // Broadcasts already sent are delivered within a few ms; give slower paths (Redis, IPC) time.
    await sleep(500);
    const delivered = receiver.received.filter((m) => m.type === "broadcast" && m.from === fingerprint).length;
    const bound = BURST + PER_SEC * elapsedSec;
    console.info(
      `${mode}: ${attempt} connections in ${elapsedSec.toFixed(2)} s, registered ${registered}, register 429s ${refusedRegistrations}, ` +
        `broadcast 429s ${limited}, delivered ${delivered} (${(delivered / elapsedSec).toFixed(1)}/s), bound ${bound.toFixed(1)}, ` +
        `slowest register ${slowestRegisterMs.toFixed(0)} ms${homes.size > 0 ? `, workers ${homes.size}` : ""}`,
    );

    expect(registered).toBeGreaterThan(1);
    expect(limited).toBeGreaterThan(0);
    expect(delivered).toBeGreaterThan(0);
    expect(delivered).toBeLessThanOrEqual(bound + MARGIN);
    if (deployment.workerOf !== undefined) expect(homes.size, "the key should have been held by both workers in turn").toBe(2);
  }

  it("a key reconnecting in a loop gets no more broadcasts through than burst + rate x elapsed", () => hop("reconnect"));

  it("a key replacing its own live connection in a loop gets no more through either", () => hop("replace"));

  it("the 11th registration of one key within a second gets 429", async () => {
    const { entries } = deployment;
    const publicKey = `eleven-${randomUUID()}`;
    // Connected up front (spread over the workers or nodes), so the registrations fit in a second.
    const peers: TestPeer[] = [];
    for (let i = 0; i < 11; i++) peers.push(await connect(entries[i % entries.length] as ServerProcess, i % 2 === 0 ? "ws" : "sio"));
    open.push(...peers);
    const codes: (number | "registered")[] = [];
    const started = performance.now();
    for (const peer of peers) {
      const reply = await peer.register({ publicKey });
      codes.push(reply.type === "registered" ? "registered" : (reply.payload?.code ?? -1));
      peer.close();
    }
    const elapsedMs = performance.now() - started;
    expect(elapsedMs, "the eleven registrations must fit in one second for this test to mean anything").toBeLessThan(1_000);
    expect(codes).toEqual([...Array.from({ length: 10 }, () => "registered"), 429]);
    // Another key is not affected.
    const other = await registeredPeer(entries[0] as ServerProcess, "ws");
    other.close();
  });
});
