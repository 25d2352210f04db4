import type { ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startRedisCluster } from "../../test/helpers/redis-cluster.ts";
import { ping } from "../../test/helpers/redis-server.ts";
import type { Transport } from "../load/protocol.ts";
import { exited, freePort, spawnPinned, stopProcess } from "./processes.ts";
import { BENCH_SERVER_CONFIG, HOST, ROOT, serverConfigFor, startNodeService, type NodeService, type StartContext, type TargetSpec, type TargetStop } from "./targets.ts";

const REDIS_BINARY = process.env.REDIS_SERVER_BIN ?? "/usr/bin/redis-server";
/** The system instance's port: never the bench's. */
const SYSTEM_REDIS_PORT = 6379;
/** Masters of the bench's Redis Cluster (the fewest Redis Cluster accepts). */
const CLUSTER_MASTERS = 3;

export type RedisAdapterKind = "sharded" | "classic";
/** How the bench's private Redis is deployed: one redis-server, or a Redis Cluster of 3 masters. */
export type RedisTopology = "single" | "cluster";

/** A private Redis started for one run, pinned like the target. */
interface BenchRedis {
  readonly mode: RedisTopology;
  /** REDIS_ADDR: `host:port`, or a cluster's seed list `host:port,host:port,...`. */
  readonly addr: string;
  /** Its redis-server processes (every master of a cluster). */
  readonly children: readonly ChildProcess[];
  stop(): Promise<void>;
}

/** One redis-server: loopback, a free port (never 6379), no persistence. */
async function startSingleRedis(cpus: string | undefined): Promise<BenchRedis> {
  if (!existsSync(REDIS_BINARY)) throw new Error(`redis-server not found at ${REDIS_BINARY}: install the Debian package redis-server (or set REDIS_SERVER_BIN)`);
  const dir = mkdtempSync(join(tmpdir(), "peer-bench-redis-"));
  let lastError = "";
  // A free port found by binding port 0 can be taken before redis-server binds it: try a few.
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort(HOST);
    if (port === SYSTEM_REDIS_PORT) continue;
    const child = spawnPinned(cpus, REDIS_BINARY, ["--port", String(port), "--bind", HOST, "--save", "", "--appendonly", "no", "--dir", dir, "--daemonize", "no", "--logfile", ""], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    const collect = (chunk: Buffer): void => {
      output = (output + chunk.toString()).slice(-2_000);
    };
    child.stdout?.on("data", collect);
    child.stderr?.on("data", collect);
    const deadline = performance.now() + 5_000;
    let ready = false;
    while (!ready && performance.now() < deadline && child.exitCode === null && child.signalCode === null) {
      ready = await ping(port);
      if (!ready) await new Promise((done) => setTimeout(done, 50));
    }
    if (ready) {
      return {
        mode: "single",
        addr: `${HOST}:${port}`,
        children: [child],
        async stop() {
          await stopProcess(child, 5_000);
          rmSync(dir, { recursive: true, force: true });
        },
      };
    }
    await stopProcess(child, 1_000);
    lastError = output;
  }
  rmSync(dir, { recursive: true, force: true });
  throw new Error(`redis-server did not start:\n${lastError}`);
}

/** A Redis Cluster of 3 masters (test/helpers/redis-cluster.ts), every redis-server pinned. */
async function startClusterRedis(cpus: string | undefined): Promise<BenchRedis> {
  const spawned: ChildProcess[] = [];
  const cluster = await startRedisCluster({
    masters: CLUSTER_MASTERS,
    spawnServer: (binary, args) => {
      const child = spawnPinned(cpus, binary, args, { stdio: ["ignore", "pipe", "pipe"] });
      spawned.push(child);
      return child;
    },
  });
  // Only the servers that run the cluster: a start on a port taken meanwhile left one behind.
  const masters = spawned.filter((child) => child.pid !== undefined && cluster.pids.includes(child.pid));
  return { mode: "cluster", addr: cluster.addr, children: masters, stop: () => cluster.stop() };
}

function startBenchRedis(topology: RedisTopology, cpus: string | undefined): Promise<BenchRedis> {
  return topology === "cluster" ? startClusterRedis(cpus) : startSingleRedis(cpus);
}

const describeRedis = (topology: RedisTopology): string => (topology === "cluster" ? `a private Redis Cluster (${CLUSTER_MASTERS} masters)` : "one private redis-server");

/** One node of a deployment: its process, and its admin listener's port when it serves one. */
interface StartedNode {
  readonly service: NodeService;
  readonly admin?: number;
}

type StartNode = (index: number, redis: BenchRedis, context: StartContext, dir: string) => Promise<StartedNode>;

/**
 * `nodes` node processes sharing one private Redis, all pinned to the target's CPUs. Endpoints
 * are the nodes in order; the measured roots are named node0.. and redis (every redis-server of a
 * cluster under that one name), so jobs report the CPU each spends per operation, and the
 * target's CPU is the nodes' and Redis's together.
 */
function nodesOnRedis(options: { id: string; description: string; nodes: number; redis: RedisTopology; startNode: StartNode }): TargetSpec {
  const { nodes, startNode } = options;
  return {
    id: options.id,
    description: options.description,
    async start(context) {
      const redis = await startBenchRedis(options.redis, context.cpus);
      const dir = mkdtempSync(join(tmpdir(), "peer-bench-nodes-"));
      const started: StartedNode[] = [];
      const cleanup = async (): Promise<TargetStop> => {
        // Nodes first (each removes its peers from Redis on the way out), then Redis.
        try {
          const stops = await Promise.all(started.map((node) => node.service.stop()));
          return { ms: Math.max(0, ...stops.map((stop) => stop.ms)), exitCodes: stops.flatMap((stop) => stop.exitCodes) };
        } finally {
          await redis.stop();
          rmSync(dir, { recursive: true, force: true });
        }
      };
      try {
        const results = await Promise.allSettled(
          Array.from({ length: nodes }, async (_, index) => {
            started[index] = await startNode(index, redis, context, dir);
          }),
        );
        const failure = results.find((result): result is PromiseRejectedResult => result.status === "rejected");
        if (failure !== undefined) throw failure.reason;
      } catch (error) {
        await cleanup().catch(() => undefined);
        throw error;
      }
      let stopping = false;
      const redisDied = Promise.race(redis.children.map((child) => exited(child).then(() => `redis-server ${child.pid} exited unexpectedly (${child.exitCode ?? child.signalCode})`)));
      return {
        endpoints: started.map(({ service, admin }) => ({ host: HOST, port: service.port, ...(admin === undefined ? {} : { admin }) })),
        pids: [...started.map(({ service }) => service.child.pid as number), ...redis.children.map((child) => child.pid as number)],
        names: [...started.map((_, index) => `node${index}`), ...redis.children.map(() => "redis")],
        output: started.flatMap(({ service }) => service.output.slice(-10)),
        died: Promise.race([...started.map(({ service }) => service.died), redisDied.then((message) => (stopping ? new Promise<string>(() => undefined) : message))]),
        async stop() {
          stopping = true;
          return cleanup();
        },
      };
    },
  };
}

const plural = (nodes: number): string => `${nodes} node${nodes === 1 ? "" : "s"}`;

/**
 * peer-server on `nodes` single-process nodes (cluster.ts, PEER_WORKERS=1) through one private
 * Redis (PEER_BROKER=redis) with the given Socket.IO Redis adapter; on a cluster,
 * PEER_REDIS_MODE=cluster with the seed list in REDIS_ADDR.
 */
export function redisNodesTarget(options: { nodes: number; adapter: RedisAdapterKind; redis?: RedisTopology; id?: string }): TargetSpec {
  const { nodes, adapter } = options;
  const redis = options.redis ?? "single";
  return nodesOnRedis({
    id: options.id ?? `${nodes}-node${nodes === 1 ? "" : "s"}`,
    description: `peer-server on ${plural(nodes)} (cluster.ts, PEER_WORKERS=1 each) through ${describeRedis(redis)}, PEER_REDIS_ADAPTER=${adapter}`,
    nodes,
    redis,
    async startNode(index, deployment, context, dir) {
      const port = await freePort(HOST);
      const configPath = join(dir, `node${index}.json`);
      const { config, admin } = await serverConfigFor(BENCH_SERVER_CONFIG, port);
      writeFileSync(configPath, JSON.stringify(config));
      const service = await startNodeService({
        entry: join(ROOT, "cluster.ts"),
        args: ["--config", configPath],
        env: { PEER_WORKERS: "1", PEER_BROKER: "redis", PEER_REDIS_MODE: deployment.mode, REDIS_ADDR: deployment.addr, PEER_REDIS_ADAPTER: adapter },
        cpus: context.cpus,
        profileDir: context.profileDir,
        knownPort: port,
      });
      return { service, ...(admin === undefined ? {} : { admin }) };
    },
  });
}

/**
 * The bare relay of `transport` (bench/baselines/bare-ws.ts or bare-sio.ts) on `nodes` nodes with
 * `--redis`: Socket.IO's sharded Redis adapter carries every message between them, and nothing
 * else is shared.
 */
export function bareNodesTarget(options: { nodes: number; transport: Transport; redis?: RedisTopology; id?: string }): TargetSpec {
  const { nodes, transport } = options;
  const redis = options.redis ?? "single";
  const kind = transport === "ws" ? "bare-ws" : "bare-sio";
  return nodesOnRedis({
    id: options.id ?? `bare-${nodes}-nodes`,
    description: `bare ${transport === "ws" ? "ws" : "Socket.IO"} relay (bench/baselines/${kind}.ts --redis) on ${plural(nodes)} through ${describeRedis(redis)}, Socket.IO's sharded Redis adapter, one room per fingerprint`,
    nodes,
    redis,
    async startNode(_index, deployment, context) {
      const service = await startNodeService({
        entry: join(ROOT, "bench", "baselines", `${kind}.ts`),
        args: ["--host", HOST, "--port", "0", "--redis", deployment.addr, "--redis-mode", deployment.mode],
        cpus: context.cpus,
        profileDir: context.profileDir,
      });
      return { service };
    },
  });
}
