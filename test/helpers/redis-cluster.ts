import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Redis } from "ioredis";
import { freePort } from "./ports.ts";
import { terminate, untilAnswering } from "./redis-server.ts";
import { waitFor } from "./wait.ts";

/** A private Redis Cluster for one test file (or one benchmark): masters only, loopback, no persistence. */
export interface RedisClusterServer {
  readonly seeds: readonly { host: string; port: number }[];
  /** "127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3", the value of REDIS_ADDR */
  readonly addr: string;
  readonly pids: readonly number[];
  /** Kills every node by its PID and removes their directories. Safe to call twice. */
  stop(): Promise<void>;
}

/** A started cluster with the controls outage tests need. */
export interface RedisClusterControl extends RedisClusterServer {
  /** Kills node `index` (of `seeds`) outright, as a crash would, and waits for it to exit. */
  kill(index: number): Promise<void>;
  /**
   * Starts node `index` again on its ports with its cluster config file: the same node, holding
   * the same slots, with no data (nothing is persisted). Waits until every node says cluster_state:ok.
   */
  restart(index: number): Promise<void>;
}

const SERVER = process.env.REDIS_SERVER_BIN ?? "/usr/bin/redis-server";
const CLI = process.env.REDIS_CLI_BIN ?? "/usr/bin/redis-cli";
const HOST = "127.0.0.1";
/** The system instance's port: never ours, whatever the OS hands out. */
const SYSTEM_PORT = 6379;
const CLUSTER_OK_TIMEOUT_MS = 15_000;
/** Port pairs tried per node: a port found free can be taken before redis-server binds it. */
const PORT_ATTEMPTS = 5;

const run = promisify(execFile);

interface ClusterNode {
  readonly port: number;
  /** The cluster bus port, chosen explicitly: the default (port + 10000) can be past 65535 or taken. */
  readonly busPort: number;
  readonly dir: string;
  child: ChildProcess | undefined;
}

/**
 * Starts `masters` (default 3, the least Redis Cluster accepts) redis-server processes in cluster
 * mode on free loopback ports, joins them with `redis-cli --cluster create` (no replicas) and
 * waits until every node reports cluster_state:ok. `spawnServer` starts each redis-server (e.g.
 * pinned to a core); by default a plain spawn. Throws, never skips, when a binary is missing.
 */
export async function startRedisCluster(options: { masters?: number; spawnServer?: (binary: string, args: string[]) => ChildProcess } = {}): Promise<RedisClusterControl> {
  const masters = options.masters ?? 3;
  if (!Number.isInteger(masters) || masters < 3) throw new Error(`a Redis Cluster needs at least 3 masters, not ${masters}`);
  for (const binary of [SERVER, CLI]) {
    if (!existsSync(binary)) throw new Error(`${binary} not found: install the Debian package redis-server (or set REDIS_SERVER_BIN / REDIS_CLI_BIN)`);
  }
  const spawnServer = options.spawnServer ?? ((binary: string, args: string[]) => spawn(binary, args, { stdio: ["ignore", "pipe", "pipe"] }));
  const base = await mkdtemp(join(tmpdir(), "peer-server-redis-cluster-"));
  const nodes: ClusterNode[] = [];
  const killAll = (): void => {
    for (const node of nodes) node.child?.kill("SIGKILL");
  };
  process.once("exit", killAll);
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await Promise.all(nodes.map((node) => end(node, "SIGTERM")));
    process.removeListener("exit", killAll);
    await rm(base, { recursive: true, force: true });
  };

  try {
    for (let index = 0; index < masters; index++) nodes.push(await firstStart(join(base, `node-${index}`), spawnServer));
    const addresses = nodes.map((node) => `${HOST}:${node.port}`);
    await run(CLI, ["--cluster", "create", ...addresses, "--cluster-replicas", "0", "--cluster-yes"], { timeout: CLUSTER_OK_TIMEOUT_MS });
    await clusterOk(nodes, masters);
  } catch (error) {
    await stop();
    throw error;
  }

  const at = (index: number): ClusterNode => {
    const node = nodes[index];
    if (node === undefined) throw new Error(`no cluster node ${index}`);
    return node;
  };
  return {
    seeds: nodes.map((node) => ({ host: HOST, port: node.port })),
    addr: nodes.map((node) => `${HOST}:${node.port}`).join(","),
    get pids() {
      return nodes.flatMap((node) => (node.child?.pid === undefined ? [] : [node.child.pid]));
    },
    stop,
    kill: (index) => end(at(index), "SIGKILL"),
    async restart(index) {
      const node = at(index);
      await end(node, "SIGKILL");
      node.child = await launch(node, spawnServer);
      await clusterOk(nodes, masters);
    },
  };
}

async function firstStart(dir: string, spawnServer: (binary: string, args: string[]) => ChildProcess): Promise<ClusterNode> {
  await mkdir(dir);
  let lastError: unknown;
  for (let attempt = 0; attempt < PORT_ATTEMPTS; attempt++) {
    const node: ClusterNode = { port: await freePort(), busPort: await freePort(), dir, child: undefined };
    if (node.port === node.busPort) continue;
    try {
      node.child = await launch(node, spawnServer);
      return node;
    } catch (error) {
      lastError = error;
    }
  }
  throw lastError instanceof Error ? lastError : new Error("redis-server did not start in cluster mode");
}

async function launch(node: ClusterNode, spawnServer: (binary: string, args: string[]) => ChildProcess): Promise<ChildProcess> {
  if (node.port === SYSTEM_PORT || node.busPort === SYSTEM_PORT) throw new Error("refusing to use the system Redis port 6379");
  const child = spawnServer(SERVER, [
    ...["--cluster-enabled", "yes", "--cluster-config-file", join(node.dir, "nodes.conf"), "--cluster-port", String(node.busPort)],
    ...["--port", String(node.port), "--bind", HOST, "--save", "", "--appendonly", "no", "--dir", node.dir, "--daemonize", "no", "--logfile", ""],
  ]);
  return untilAnswering(child, node.port, `redis-server (cluster node)`);
}

/** Waits until every node knows all `masters` and says cluster_state:ok (all slots served). */
async function clusterOk(nodes: readonly ClusterNode[], masters: number): Promise<void> {
  await Promise.all(
    nodes.map(async (node) => {
      const client = new Redis({ host: HOST, port: node.port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      client.on("error", () => undefined);
      try {
        await client.connect();
        await waitFor(
          () => client.call("CLUSTER", "INFO") as Promise<string>,
          (info) => info.includes("cluster_state:ok") && info.includes(`cluster_known_nodes:${masters}\r\n`),
          { timeoutMs: CLUSTER_OK_TIMEOUT_MS, intervalMs: 50, what: `the cluster node on port ${node.port} to say cluster_state:ok` },
        );
      } finally {
        client.disconnect();
      }
    }),
  );
}

function end(node: ClusterNode, signal: NodeJS.Signals): Promise<void> {
  const child = node.child;
  node.child = undefined;
  return child === undefined ? Promise.resolve() : terminate(child, signal);
}
