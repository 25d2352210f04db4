import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { workerOf } from "../helpers/cluster.ts";
import { registeredPeer, type Envelope, type TestPeer, type Transport } from "../helpers/peers.ts";
import { startNodes, unique } from "../helpers/redis-nodes.ts";
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

const TOPOLOGIES: { name: string; start(): Promise<Deployment> }[] = [
  {
    name: "one process",
    async start() {
      const server = await startServer();
      return { senderSide: server, receiverSide: server, stop: async () => void (await server.stop()) };
    },
  },
  {
    name: "two workers",
    async start() {
      const server = await startServer({ env: { PEER_WORKERS: "2" } });
      return { senderSide: server, receiverSide: server, stop: async () => void (await server.stop()) };
    },
  },
  {
    name: "one Redis node",
    async start() {
      const redis: RedisServer = await startRedisServer();
      const [node] = (await startNodes(redis, [{}])) as [ServerProcess];
      return {
        senderSide: node,
        receiverSide: node,
        stop: async () => {
          await node.stop();
          await redis.stop();
        },
      };
    },
  },
  {
    name: "a Redis node of two workers",
    async start() {
      const redis: RedisServer = await startRedisServer();
      const [node] = (await startNodes(redis, [{ workers: 2 }])) as [ServerProcess];
      return {
        senderSide: node,
        receiverSide: node,
        stop: async () => {
          await node.stop();
          await redis.stop();
        },
      };
    },
  },
  {
    name: "two Redis nodes",
    async start() {
      const redis: RedisServer = await startRedisServer();
      const [a, b] = (await startNodes(redis, [{}, {}])) as [ServerProcess, ServerProcess];
      return {
        senderSide: a,
        receiverSide: b,
        stop: async () => {
          await Promise.all([a.stop(), b.stop()]);
          await redis.stop();
        },
      };
    },
  },
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
