import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { workerOf, workers } from "../helpers/cluster.ts";
import { DialectClient } from "../helpers/dialect-client.ts";
import { startNodes } from "../helpers/redis-nodes.ts";
import { startRedisServer, type RedisServer } from "../helpers/redis-server.ts";
import { startServer, type ServerProcess } from "../helpers/server-process.ts";
import { waitFor } from "../helpers/wait.ts";

/**
 * A worker or a node that dies: its dialect peers are announced gone to the peers that knew them,
 * in each dialect's own words (PeerPigeon `peer-disconnected`, random chat `partner-left`), and a
 * random-chat user whose partner died waits again and is paired with the next user who comes.
 */

/** How long a deployment may take to notice the death and clean up after it. */
const DEATH_BOUND_MS = 12_000;

const wsBase = (server: ServerProcess): string => server.http.replace(/^http/, "ws");
const newPeerId = (): string => randomBytes(20).toString("hex");
const opened: DialectClient[] = [];

async function pigeon(server: ServerProcess, peerId: string, network: string): Promise<DialectClient> {
  const client = await DialectClient.open(`${wsBase(server)}/pigeon?peerId=${peerId}`);
  opened.push(client);
  await client.nextOfType("connected");
  client.send({ type: "announce", networkName: network, data: { peerId } });
  return client;
}

async function chatter(server: ServerProcess): Promise<{ client: DialectClient; identity: string }> {
  const client = await DialectClient.open(`${wsBase(server)}/randomchat/ws`);
  opened.push(client);
  const ready = await client.nextOfType("ready");
  return { client, identity: `randomchat:${String(ready["clientId"])}` };
}

const discovered = (peerId: string) => (message: Record<string, unknown>) =>
  message["type"] === "peer-discovered" && (message["data"] as Record<string, unknown>)["peerId"] === peerId;
const disconnected = (peerId: string) => (message: Record<string, unknown>) =>
  message["type"] === "peer-disconnected" && (message["data"] as Record<string, unknown>)["peerId"] === peerId;

/** The pid of the worker holding `identity`, as the admin listener's /admin/stats?detail=peers lists it. */
async function workerPid(server: ServerProcess, identity: string): Promise<number> {
  const nodeId = await waitFor(() => workerOf(server, identity), (found) => found !== undefined, { timeoutMs: 5_000, what: `${identity} to be registered` });
  const worker = (await workers(server)).find((candidate) => candidate.node_id === nodeId);
  return worker?.pid as number;
}

/** Pairs two random-chat users: the first waits, the second completes the pair. */
async function pair(first: { client: DialectClient }, second: { client: DialectClient }): Promise<void> {
  first.client.send({ type: "available" });
  // `available` has no reply: a ping behind it in the same queue says it was handled.
  first.client.send({ type: "ping" });
  await first.client.nextOfType("pong");
  second.client.send({ type: "available" });
  await first.client.nextOfType("matched");
  await second.client.nextOfType("matched");
}

afterAll(() => {
  for (const client of opened) client.close();
});

describe("a worker dies (2 workers)", () => {
  let server: ServerProcess;
  beforeAll(async () => {
    server = await startServer({ env: { PEER_WORKERS: "2" } });
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
  });

  it("PeerPigeon: the peers of the dead worker's peer's network get peer-disconnected", async () => {
    const network = `fail-${randomBytes(3).toString("hex")}`;
    const [aId, bId] = [newPeerId(), newPeerId()];
    const a = await pigeon(server, aId, network);
    const aPid = await workerPid(server, `pigeon:${aId}`);
    let b = await pigeon(server, bId, network);
    for (let attempt = 0; (await workerPid(server, `pigeon:${bId}`)) === aPid; attempt++) {
      if (attempt === 20) throw new Error("could not place b on the other worker");
      b.close();
      await b.closed;
      b = await pigeon(server, bId, network);
    }
    await b.next(discovered(aId));
    process.kill(aPid, "SIGKILL");
    expect(await b.next(disconnected(aId), DEATH_BOUND_MS)).toMatchObject({ fromPeerId: "system", networkName: network });
    await a.closed;
  }, 40_000);

  it("random chat: the partner of a user on the dead worker gets partner-left once and is paired with the next user", async () => {
    // The worker killed before has been replaced: connections are routed to both again.
    await waitFor(() => workers(server), (list) => list.length === 2, { timeoutMs: 15_000, what: "two workers" });
    const x = await chatter(server);
    const xPid = await workerPid(server, x.identity);
    let y = await chatter(server);
    for (let attempt = 0; (await workerPid(server, y.identity)) === xPid; attempt++) {
      if (attempt === 20) throw new Error("could not place y on the other worker");
      y.client.close();
      await y.client.closed;
      y = await chatter(server);
    }
    await pair(x, y);
    process.kill(xPid, "SIGKILL");
    await y.client.nextOfType("partner-left", DEATH_BOUND_MS);
    const z = await chatter(server);
    z.client.send({ type: "available" });
    const matched = await y.client.nextOfType("matched", DEATH_BOUND_MS, y.client.received.findIndex((m) => m["type"] === "partner-left") + 1);
    expect(matched["partnerId"]).toBe(z.identity.slice("randomchat:".length));
    expect(y.client.ofType("partner-left")).toHaveLength(1);
  }, 40_000);
});

describe("a node dies (two Redis nodes)", () => {
  let redis: RedisServer;
  let nodes: ServerProcess[];
  beforeAll(async () => {
    redis = await startRedisServer();
    nodes = await startNodes(redis, [{}, {}]);
  }, 60_000);
  afterAll(async () => {
    await Promise.all(nodes.map((node) => node.stop()));
    await redis.stop();
  });

  it("SIGKILL of a node: PeerPigeon peers on the other node get peer-disconnected, and a random-chat partner gets partner-left and is paired again", async () => {
    const [doomed, survivor] = nodes as [ServerProcess, ServerProcess];
    const network = `fail-${randomBytes(3).toString("hex")}`;
    const [aId, bId] = [newPeerId(), newPeerId()];
    await pigeon(doomed, aId, network);
    const b = await pigeon(survivor, bId, network);
    await b.next(discovered(aId));
    const x = await chatter(doomed);
    const y = await chatter(survivor);
    await pair(x, y);

    doomed.process.kill("SIGKILL");
    expect(await b.next(disconnected(aId), DEATH_BOUND_MS)).toMatchObject({ networkName: network });
    await y.client.nextOfType("partner-left", DEATH_BOUND_MS);
    const z = await chatter(survivor);
    z.client.send({ type: "available" });
    const afterLeft = y.client.received.findIndex((m) => m["type"] === "partner-left") + 1;
    expect((await y.client.nextOfType("matched", DEATH_BOUND_MS, afterLeft))["partnerId"]).toBe(z.identity.slice("randomchat:".length));
    expect(y.client.ofType("partner-left")).toHaveLength(1);
  }, 60_000);
});
