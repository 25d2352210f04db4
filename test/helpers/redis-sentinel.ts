import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { freePort } from "./ports.ts";
import { terminate, untilAnswering } from "./redis-server.ts";
import { waitFor } from "./wait.ts";

/**
 * A private Redis Sentinel set-up for one test file: a master, one replica of it and three
 * sentinels watching it (quorum 2), all on free loopback ports, nothing persisted. The sentinels
 * judge the master down after 1 s, so a failover takes a few seconds.
 */
export interface SentinelSetup {
  /** The name the sentinels know the master by (`redis_sentinel_name`). */
  readonly masterName: string;
  /** `127.0.0.1:<port>` of each sentinel, comma-separated: `redis_addr` in sentinel mode. */
  readonly sentinelAddrs: string;
  readonly sentinelPorts: readonly number[];
  /** The port of the server that was master at start. */
  readonly masterPort: number;
  /** The port of its replica: the server a failover promotes. */
  readonly replicaPort: number;
  /** What points a node at this set-up: PEER_REDIS_MODE, REDIS_ADDR, REDIS_SENTINEL_NAME. */
  readonly env: Readonly<Record<string, string>>;
  /** The master's port as sentinel `index` reports it now; undefined when it cannot say. */
  masterPortSeen(index?: number): Promise<number | undefined>;
  /**
   * Cuts the replica off the master's writes from now on, while it stays healthy in the sentinels'
   * eyes: what the master writes afterwards is what asynchronous replication loses when the
   * master dies before copying it.
   */
  stallReplication(): Promise<void>;
  /**
   * Keeps the sentinels from failing over until releaseFailover: they need more of them than
   * there are to agree the master is down. A failover that takes this long happens when the
   * sentinels' vote is split.
   */
  holdFailover(): Promise<void>;
  releaseFailover(): Promise<void>;
  /** Kills the master outright (SIGKILL), as a crash would, and waits for it to exit. */
  killMaster(): Promise<void>;
  /** Kills every process of the set-up by PID and removes their directories. Safe to call twice. */
  stop(): Promise<void>;
}

const BINARY = process.env.REDIS_SERVER_BIN ?? "/usr/bin/redis-server";
const MASTER_NAME = "mymaster";
/** Sentinels that must agree the master is down before a failover: two of the three. */
const QUORUM = 2;
const START_TIMEOUT_MS = 5_000;
/** Sentinels find the replica through the master's INFO and each other through hello messages every 2 s. */
const DISCOVERY_TIMEOUT_MS = 20_000;
/** The system instances' ports: never ours, whatever the OS hands out. */
const SYSTEM_PORTS = new Set([6379, 26379]);

/** Starts master, replica and three sentinels; returns once every sentinel sees the replica and the two other sentinels. */
export async function startSentinelSetup(): Promise<SentinelSetup> {
  if (!existsSync(BINARY)) {
    throw new Error(`redis-server not found at ${BINARY}: install the Debian package redis-server (or set REDIS_SERVER_BIN)`);
  }
  const dir = await mkdtemp(join(tmpdir(), "peer-server-sentinel-"));
  const children: ChildProcess[] = [];
  const killAll = (): void => {
    for (const child of children) child.kill("SIGKILL");
  };
  process.once("exit", killAll);
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await Promise.all(children.map((child) => terminate(child)));
    process.removeListener("exit", killAll);
    await rm(dir, { recursive: true, force: true });
  };

  try {
    const serverArgs = (port: number, name: string): string[] => [
      "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
      "--dir", dir, "--dbfilename", `${name}.rdb`, "--daemonize", "no", "--logfile", "",
    ];
    // The replica's first sync starts at once, not after the default 5 s wait for more replicas.
    const master = await startOnFreePort((port) => [...serverArgs(port, "master"), "--repl-diskless-sync-delay", "0"]);
    children.push(master.child);
    const replica = await startOnFreePort((port) => [...serverArgs(port, "replica"), "--replicaof", "127.0.0.1", String(master.port)]);
    children.push(replica.child);
    await waitFor(() => info(replica.port, "replication"), (text) => text.includes("master_link_status:up"), {
      timeoutMs: START_TIMEOUT_MS,
      intervalMs: 50,
      what: "the replica to sync with the master",
    });

    const sentinelPorts: number[] = [];
    for (let index = 0; index < 3; index++) {
      const sentinel = await startOnFreePort(async (port) => {
        // Each sentinel rewrites its own file (what it learns of replicas, peers and failovers).
        const file = join(dir, `sentinel-${port}.conf`);
        await writeFile(
          file,
          [
            `port ${port}`,
            "bind 127.0.0.1",
            "daemonize no",
            'logfile ""',
            `dir ${dir}`,
            "sentinel resolve-hostnames no",
            `sentinel monitor ${MASTER_NAME} 127.0.0.1 ${master.port} ${QUORUM}`,
            `sentinel down-after-milliseconds ${MASTER_NAME} 1000`,
            `sentinel failover-timeout ${MASTER_NAME} 5000`,
            "",
          ].join("\n"),
        );
        return [file, "--sentinel"];
      });
      children.push(sentinel.child);
      sentinelPorts.push(sentinel.port);
    }
    for (const port of sentinelPorts) {
      await waitFor(
        () => sentinelView(port),
        (view) => view.replicas.includes(replica.port) && view.sentinels === 2,
        { timeoutMs: DISCOVERY_TIMEOUT_MS, intervalMs: 100, what: `sentinel ${port} to see the replica and the two other sentinels` },
      );
    }

    const sentinelAddrs = sentinelPorts.map((port) => `127.0.0.1:${port}`).join(",");
    const setQuorum = async (quorum: number): Promise<void> => {
      await Promise.all(sentinelPorts.map((port) => query(port, "SENTINEL", "SET", MASTER_NAME, "quorum", String(quorum))));
    };
    return {
      masterName: MASTER_NAME,
      sentinelAddrs,
      sentinelPorts,
      masterPort: master.port,
      replicaPort: replica.port,
      env: { PEER_REDIS_MODE: "sentinel", REDIS_ADDR: sentinelAddrs, REDIS_SENTINEL_NAME: MASTER_NAME },
      async masterPortSeen(index = 0) {
        const port = sentinelPorts[index];
        if (port === undefined) throw new Error(`no sentinel ${index}`);
        const address = await query(port, "SENTINEL", "get-master-addr-by-name", MASTER_NAME).catch(() => null);
        return Array.isArray(address) ? Number(address[1]) : undefined;
      },
      async stallReplication() {
        // A password the master does not have: the replica's AUTH fails at every reconnection.
        await query(replica.port, "CONFIG", "SET", "masterauth", randomBytes(8).toString("hex"));
        await query(replica.port, "CLIENT", "KILL", "TYPE", "master");
        await waitFor(() => info(replica.port, "replication"), (text) => text.includes("master_link_status:down"), {
          timeoutMs: START_TIMEOUT_MS,
          intervalMs: 20,
          what: "the replica to lose its link to the master",
        });
      },
      holdFailover: () => setQuorum(sentinelPorts.length + 1),
      releaseFailover: () => setQuorum(QUORUM),
      killMaster: () => terminate(master.child, "SIGKILL"),
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * Spawns redis-server with the arguments made for a free port and waits until it answers PING.
 * A port found free can be taken before the server binds it: a few ports are tried.
 */
async function startOnFreePort(argsFor: (port: number) => string[] | Promise<string[]>): Promise<{ child: ChildProcess; port: number }> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    if (SYSTEM_PORTS.has(port)) continue;
    try {
      return { child: await launch(await argsFor(port), port), port };
    } catch (error) {
      lastError = error;
    }
  }
  throw lastError instanceof Error ? lastError : new Error("redis-server did not start");
}

async function launch(args: string[], port: number): Promise<ChildProcess> {
  const child = spawn(BINARY, args, { stdio: ["ignore", "pipe", "pipe"] });
  return untilAnswering(child, port, `redis-server ${args.join(" ")}`);
}

/** One command on a short-lived connection to 127.0.0.1:`port`. */
async function query(port: number, command: string, ...args: string[]): Promise<unknown> {
  const client = new Redis({ host: "127.0.0.1", port, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, connectTimeout: 1_000, commandTimeout: 1_000 });
  client.on("error", () => undefined);
  try {
    await client.connect();
    return await client.call(command, ...args);
  } finally {
    client.disconnect();
  }
}

async function info(port: number, section: string): Promise<string> {
  return String(await query(port, "INFO", section).catch(() => ""));
}

/** The replicas (by port, those the sentinel deems healthy) and how many other sentinels sentinel `port` knows. */
async function sentinelView(port: number): Promise<{ replicas: number[]; sentinels: number }> {
  const [replicas, sentinels] = await Promise.all([
    query(port, "SENTINEL", "replicas", MASTER_NAME).catch(() => []),
    query(port, "SENTINEL", "sentinels", MASTER_NAME).catch(() => []),
  ]);
  const healthy = (replicas as string[][])
    .map((flat) => fields(flat))
    .filter((replica) => !/disconnected|s_down|o_down/.test(replica["flags"] ?? ""))
    .map((replica) => Number(replica["port"]));
  return { replicas: healthy, sentinels: (sentinels as unknown[]).length };
}

/** A flat [name, value, name, value, ...] reply as a record. */
function fields(flat: readonly string[]): Record<string, string> {
  const record: Record<string, string> = {};
  for (let index = 0; index + 1 < flat.length; index += 2) record[flat[index] as string] = flat[index + 1] as string;
  return record;
}

