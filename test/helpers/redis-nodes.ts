import { randomUUID } from "node:crypto";
import { expect } from "vitest";
import { type WorkerView } from "./cluster.ts";
import { closeAll, connectSio, connectWs, type Envelope, type TestPeer, type Transport } from "./peers.ts";
import type { RedisClusterServer } from "./redis-cluster.ts";
import type { SentinelSetup } from "./redis-sentinel.ts";
import type { RedisServer } from "./redis-server.ts";
import { getAdminJson, startServer, type ServerProcess } from "./server-process.ts";

/**
 * Several real server processes sharing one private redis-server (or one private Redis Cluster, or
 * Sentinel set-up): each process (or each worker of a clustered process) is a node of one
 * deployment. Peers are placed on a node by connecting to that node's own port.
 */

/**
 * The Redis the nodes share: one redis-server, a Redis Cluster (redis_mode cluster, its seeds in
 * REDIS_ADDR), or a Sentinel set-up (redis_mode sentinel, its sentinels in REDIS_ADDR).
 */
export type NodesRedis = RedisServer | RedisClusterServer | SentinelSetup;

/** The env that points a node at `redis`. */
function redisEnv(redis: NodesRedis): Record<string, string> {
  if ("env" in redis) return { ...redis.env };
  if ("addr" in redis) return { PEER_REDIS_MODE: "cluster", REDIS_ADDR: redis.addr };
  return { REDIS_ADDR: `127.0.0.1:${redis.port}` };
}

export interface NodeSpec {
  /** PEER_WORKERS of the process; 1 (default) makes the process itself the node. */
  workers?: number;
  /** "sharded" (default) or "classic". */
  adapter?: "sharded" | "classic";
  env?: Record<string, string>;
  /** Extra config.json options (snake_case). */
  config?: Record<string, unknown>;
}

export function nodeEnv(redis: NodesRedis, spec: NodeSpec = {}): Record<string, string> {
  return {
    PEER_BROKER: "redis",
    ...redisEnv(redis),
    PEER_WORKERS: String(spec.workers ?? 1),
    PEER_REDIS_ADAPTER: spec.adapter ?? "sharded",
    ...spec.env,
  };
}

export interface NodeSpecWithPort extends NodeSpec {
  /** A fixed listen port (default 0: any free port), e.g. to restart a node on its old address. */
  port?: number;
}

/** Starts one node process against `redis`. */
export function startNode(redis: NodesRedis, spec: NodeSpecWithPort = {}): Promise<ServerProcess> {
  return startServer({ config: { ...spec.config, port: spec.port ?? 0 }, env: nodeEnv(redis, spec), timeoutMs: 30_000 });
}

export { freePort } from "./ports.ts";

/** Starts the nodes one after another (in order: node start-up is what some tests look at). */
export async function startNodes(redis: NodesRedis, specs: readonly NodeSpecWithPort[]): Promise<ServerProcess[]> {
  const nodes: ServerProcess[] = [];
  try {
    for (const spec of specs) nodes.push(await startNode(redis, spec));
  } catch (error) {
    await Promise.all(nodes.map((node) => node.stop()));
    throw error;
  }
  return nodes;
}

export const unique = (label: string): string => `${label}-${randomUUID().slice(0, 8)}`;

/** A pool of test peers, all closed at the end of the file. */
export class PeerPool {
  readonly open: TestPeer[] = [];

  /** A connected (not registered) peer on `node`'s own port. */
  async connect(node: ServerProcess, transport: Transport): Promise<TestPeer> {
    const peer = transport === "ws" ? await connectWs(node.ws) : await connectSio(node.http);
    this.open.push(peer);
    return peer;
  }

  /** A registered peer connected straight to `node`'s own port. */
  async on(node: ServerProcess, transport: Transport, options: { alias?: string; publicKey?: string; meta?: Record<string, unknown>; namespace?: string } = {}): Promise<TestPeer> {
    const peer = await this.connect(node, transport);
    const reply = await peer.register({ alias: options.alias, publicKey: options.publicKey, meta: options.meta });
    expect(reply.type, JSON.stringify(reply)).toBe("registered");
    if (options.namespace !== undefined) expect((await peer.join(options.namespace)).type).toBe("peer_list");
    return peer;
  }

  closeAll(): void {
    closeAll(this.open);
  }
}

/** Every worker of the deployment as `node` reports it (its admin listener's /admin/stats?detail=peers asks all nodes). */
export async function deploymentWorkers(node: ServerProcess): Promise<WorkerView[]> {
  const { status, body } = await getAdminJson(node, "/admin/stats?detail=peers");
  expect(status).toBe(200);
  return body["workers"] as WorkerView[];
}

/** Whether a worker entry belongs to a node process: the process itself, or one of its cluster workers (`<host>-<primary pid>.w<i>-...`). */
export const belongsTo = (worker: WorkerView, node: ServerProcess): boolean =>
  worker.pid === node.process.pid || worker.node_id.includes(`-${node.process.pid}.w`);

/** Index into `nodes` of the node process holding a registered fingerprint, as `asked` reports it. */
export async function nodeIndexOf(nodes: readonly ServerProcess[], fingerprint: string, asked: ServerProcess = nodes[0] as ServerProcess): Promise<number> {
  const holder = (await deploymentWorkers(asked)).find((worker) => worker.peers.includes(fingerprint));
  if (holder === undefined) return -1;
  return nodes.findIndex((node) => belongsTo(holder, node));
}

/** `discover` through a peer; returns the listed fingerprints and the total. */
export async function discover(peer: TestPeer, namespace: string, limit?: number): Promise<{ fingerprints: string[]; total: number; reply: Envelope }> {
  const reply = await peer.request("discover", { payload: limit === undefined ? { namespace } : { namespace, limit } }, ["peer_list"]);
  expect(reply.type, JSON.stringify(reply)).toBe("peer_list");
  const peers = (reply.payload?.["peers"] ?? []) as { fingerprint: string }[];
  return { fingerprints: peers.map((entry) => entry.fingerprint), total: reply.payload?.["total"] as number, reply };
}

export const isType = (type: string, from?: string, namespace?: string) => (message: Envelope): boolean =>
  message.type === type && (from === undefined || message.from === from) && (namespace === undefined || message.namespace === namespace);

/** Whether a process with this pid still exists. */
export function alive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Sends a ping and waits for its pong: every request sent before it on this connection has been handled. */
export async function settled(peer: TestPeer): Promise<void> {
  expect((await peer.request("ping", {}, ["pong"])).type).toBe("pong");
}
