import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { workerOf } from "../helpers/cluster.ts";
import { registeredPeer, type Envelope, type TestPeer, type Transport } from "../helpers/peers.ts";
import { startNodes, unique, type NodeSpec } from "../helpers/redis-nodes.ts";
import { startRedisServer, type RedisServer } from "../helpers/redis-server.ts";
import { startServer, type ServerProcess } from "../helpers/server-process.ts";

/**
 * Messages from one sender reach each receiver in the order they were sent, whatever their types:
 * relays, signals and broadcasts interleaved, between peers on one process, on two workers of a
 * machine, and on two nodes sharing Redis.
 */

const KINDS = ["relay", "broadcast", "signal"] as const;
const MESSAGES = 60;
const ROUNDS = 4;

interface Deployment {
  /** Where the sender connects, and where the receiver does. */
  senderSide: ServerProcess;
  receiverSide: ServerProcess;
  stop(): Promise<void>;
}

/** One server process (with `workers` workers); sender and receiver both connect to it. */
async function oneServer(workers: number): Promise<Deployment> {
  const server = await startServer({ env: { PEER_WORKERS: String(workers) } });
  return { senderSide: server, receiverSide: server, stop: async () => void (await server.stop()) };
}

/** Nodes on a private Redis; the sender connects to the first, the receiver to the last. */
async function redisNodes(specs: NodeSpec[]): Promise<Deployment> {
  const redis: RedisServer = await startRedisServer();
  const nodes = await startNodes(redis, specs);
  return {
    senderSide: nodes[0] as ServerProcess,
    receiverSide: nodes[nodes.length - 1] as ServerProcess,
    stop: async () => {
      await Promise.all(nodes.map((node) => node.stop()));
      await redis.stop();
    },
  };
}

const TOPOLOGIES: { name: string; start(): Promise<Deployment> }[] = [
  { name: "one process", start: () => oneServer(1) },
  { name: "two workers", start: () => oneServer(2) },
  { name: "one Redis node", start: () => redisNodes([{}]) },
  { name: "a Redis node of two workers", start: () => redisNodes([{ workers: 2 }]) },
  { name: "two Redis nodes", start: () => redisNodes([{}, {}]) },
];

const sequenceOf = (message: Envelope): number => {
  const payload = message.payload as Record<string, unknown> | undefined;
  const carried = message.type === "broadcast" ? (payload?.["data"] as Record<string, unknown> | undefined) : payload;
  return Number(carried?.["seq"]);
};

describe.each(TOPOLOGIES)("delivery order, $name", (topology) => {
  let deployment: Deployment;

  beforeAll(async () => {
    deployment = await topology.start();
  }, 60_000);
  afterAll(async () => {
    await deployment.stop();
  });

  it.each([
    ["ws", "sio"],
    ["sio", "ws"],
  ] as [Transport, Transport][])("%s sender to %s receiver: interleaved relay, broadcast, signal arrive in the order sent", async (senderTransport, receiverTransport) => {
    for (let round = 0; round < ROUNDS; round++) {
      const namespace = unique("order");
      const peers: TestPeer[] = [];
      try {
        const sender = await registeredPeer(deployment.senderSide, senderTransport, { namespace });
        peers.push(sender);
        // Two workers: the router sends each connection to the least loaded one, as it knows the
        // loads (closed connections count until the next report): connect until one lands on the other.
        let receiver = await registeredPeer(deployment.receiverSide, receiverTransport, { namespace });
        peers.push(receiver);
        if (topology.name.includes("two workers")) {
          for (let attempt = 0; attempt < 16 && (await workerOf(deployment.receiverSide, receiver.fingerprint)) === (await workerOf(deployment.senderSide, sender.fingerprint)); attempt++) {
            receiver = await registeredPeer(deployment.receiverSide, receiverTransport, { namespace });
            peers.push(receiver);
          }
          expect(await workerOf(deployment.receiverSide, receiver.fingerprint)).not.toBe(await workerOf(deployment.senderSide, sender.fingerprint));
        }
        await sender.next((m) => m.type === "peer_joined" && m.from === receiver.fingerprint).catch(() => undefined);

        for (let seq = 0; seq < MESSAGES; seq++) {
          const kind = KINDS[seq % KINDS.length] as (typeof KINDS)[number];
          if (kind === "broadcast") sender.send("broadcast", { payload: { namespace, data: { seq } } });
          else sender.send(kind, { to: receiver.fingerprint, payload: { seq } });
        }
        const received: number[] = [];
        const delivered = (m: Envelope): boolean => (KINDS as readonly string[]).includes(m.type) && m.from === sender.fingerprint;
        for (let index = 0; index < MESSAGES; index++) received.push(sequenceOf(await receiver.next(delivered)));
        expect(received, `round ${round}`).toEqual(Array.from({ length: MESSAGES }, (_, seq) => seq));
      } finally {
        for (const peer of peers) peer.close();
      }
    }
  });
});
