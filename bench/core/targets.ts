import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { freePort, spawnPinned, stopGroup, type GroupStop, waitReady } from "./processes.ts";
import { parseDurationMs } from "../../src/config/duration.ts";

export const ROOT = resolve(import.meta.dirname, "../..");
export const HOST = "127.0.0.1";

/** Where clients connect. A target may expose several (e.g. one per node, later). */
export interface Endpoint {
  readonly host: string;
  readonly port: number;
  /** The port of the server's admin listener on `host`, when it serves one (metrics_enabled). */
  readonly admin?: number;
}

/**
 * A server's config.json for the bench on `port`, and its admin listener's port: with
 * metrics_enabled (BENCH_SERVER_OPTIONS), a free port the bench picks, so that it knows where to
 * ask the admin API where peers are; otherwise none.
 */
export async function serverConfigFor(config: Record<string, unknown>, port: number): Promise<{ config: Record<string, unknown>; admin: number | undefined }> {
  if (config["metrics_enabled"] !== true) return { config: { ...config, port }, admin: undefined };
  const admin = await freePort(HOST);
  return { config: { ...config, port, metrics_host: HOST, metrics_port: admin }, admin };
}

export interface StartContext {
  /** taskset CPU list for the target's processes, or undefined to leave them unpinned. */
  readonly cpus: string | undefined;
  /** When set, node processes of this target write V8 CPU profiles here (`--cpu-prof`). */
  readonly profileDir: string | undefined;
}

/** A started target: its endpoints, the processes whose RSS and CPU are measured, and how to stop it. */
export interface RunningTarget {
  readonly endpoints: readonly Endpoint[];
  /** Root PIDs measured at checkpoints; each one's descendants are included. */
  readonly pids: readonly number[];
  /** A name per root PID (e.g. "node0", "redis"): jobs then report CPU per operation for each. */
  readonly names?: readonly string[];
  /** Recent output lines, for error messages. */
  readonly output: readonly string[];
  /** Resolves with a description if a process of the target dies before stop(). */
  readonly died: Promise<string>;
  /**
   * Stops every process of the target and resolves with how long that took (nothing, for a target
   * that does not measure it); rejects, naming the processes, when one had to be SIGKILLed after
   * the deadline or outlived even that.
   */
  stop(): Promise<TargetStop | void>;
}

/** How a target stopped. */
export interface TargetStop {
  /** From the SIGTERM until no process of the target was left (the slowest, for several). */
  readonly ms: number;
  /** Exit code of each process started (a server's primary: 0 when its shutdown finished in time, 1 when cut). */
  readonly exitCodes: readonly (number | null)[];
}

/** The server's default shutdown_timeout, which the bench keeps unless BENCH_SERVER_OPTIONS sets one. */
const DEFAULT_SHUTDOWN_TIMEOUT_MS = 10_000;
/** What a target gets on top of its shutdown_timeout to enforce it before the bench SIGKILLs it. */
const ENFORCE_MS = 2_000;
/** How long a target's processes have after SIGTERM before the bench SIGKILLs them. */
export const STOP_DEADLINE_MS = DEFAULT_SHUTDOWN_TIMEOUT_MS + ENFORCE_MS;

/** The TargetStop of one group stop, or an error naming what did not stop in time. */
export function checkedStop(name: string, stopped: GroupStop): TargetStop {
  if (stopped.survivors.length > 0) {
    throw new Error(`${name}: processes ${stopped.survivors.join(", ")} still running after SIGTERM and, ${stopped.deadlineMs / 1000} s later, SIGKILL`);
  }
  if (stopped.killed.length > 0) {
    throw new Error(`${name}: processes ${stopped.killed.join(", ")} still running ${stopped.deadlineMs / 1000} s after SIGTERM (killed with SIGKILL)`);
  }
  return { ms: stopped.ms, exitCodes: [stopped.exitCode] };
}

/**
 * Something a scenario measures: the server in some configuration, or a baseline relay.
 * A future target (e.g. "3 nodes through Redis") only has to implement start().
 */
export interface TargetSpec {
  /** Short id shown in tables and JSON, e.g. "server", "bare-ws", "1-worker". */
  readonly id: string;
  readonly description: string;
  start(context: StartContext): Promise<RunningTarget>;
}

/** A node process started by the bench and known to be listening. */
export interface NodeService {
  readonly child: ChildProcess;
  readonly port: number;
  readonly output: string[];
  readonly died: Promise<string>;
  /** Stops its whole process group (see stopGroup); rejects when a process had to be killed or survived. */
  stop(): Promise<TargetStop>;
}

/**
 * Starts `node --import tsx <entry> ...args` pinned to `cpus`, and waits for it to listen (a
 * `listening` JSON line, or /health answering on `knownPort`). Building block for targets. The
 * process leads a process group of its own, which holds whatever it forks (a cluster's workers):
 * it is stopped as a whole.
 */
export async function startNodeService(options: {
  entry: string;
  args: readonly string[];
  env?: Record<string, string>;
  cpus: string | undefined;
  profileDir: string | undefined;
  knownPort?: number;
  /** How long its processes have after SIGTERM (default STOP_DEADLINE_MS). */
  stopDeadlineMs?: number;
}): Promise<NodeService> {
  const stopDeadlineMs = options.stopDeadlineMs ?? STOP_DEADLINE_MS;
  // BENCH_NODE_ARGS: Node flags for every target (a cluster's workers inherit them), e.g. V8 heap
  // flags that NODE_OPTIONS does not take.
  const nodeArgs = [...(process.env["BENCH_NODE_ARGS"] ?? "").split(" ").filter(Boolean), ...(options.profileDir === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${options.profileDir}`])];
  const child = spawnPinned(options.cpus, process.execPath, [...nodeArgs, "--import", "tsx", options.entry, ...options.args], {
    cwd: ROOT,
    env: { ...process.env, ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  const output: string[] = [];
  let stopping = false;
  const died = new Promise<string>((done) =>
    child.once("exit", (code, signal) => {
      if (!stopping) done(`${options.entry} exited unexpectedly (${code ?? signal}):\n${output.slice(-20).join("\n")}`);
    }),
  );
  try {
    const port = await waitReady(child, HOST, options.knownPort, output);
    return {
      child,
      port,
      output,
      died,
      async stop() {
        stopping = true;
        return checkedStop(options.entry, await stopGroup(child, stopDeadlineMs));
      },
    };
  } catch (error) {
    stopping = true;
    await stopGroup(child, stopDeadlineMs);
    throw error;
  }
}

/**
 * Server configuration for every bench run: loopback, quiet logs, and limits raised so that they
 * do not throttle the load (the bench measures the delivery path, not the rate limiter's verdicts).
 * send_buffer_size is raised because a client keeping 32 messages in flight can have more than the
 * default 32 queued for it within one event-loop turn. The random-chat dialect's own per-connection
 * limit (40 frames/s by default, as its original) is raised for the same reason.
 */
export const BENCH_SERVER_CONFIG: Readonly<Record<string, unknown>> = {
  host: HOST,
  log_level: "warn",
  rate_limit_per_sec: 1_000_000,
  rate_limit_burst: 1_000_000,
  // The load comes from a few loopback addresses: per-address limits would refuse it.
  max_connections_per_ip: 1_000_000,
  connection_rate_per_ip: 1_000_000,
  connection_burst_per_ip: 1_000_000,
  registration_rate_per_ip: 1_000_000,
  registration_burst_per_ip: 1_000_000,
  send_buffer_size: 4_096,
  randomchat_max_msg_per_second: 1_000_000,
  ...serverOptionsFromEnv(process.env["BENCH_SERVER_OPTIONS"]),
};

/**
 * More server options for every run, as a JSON object of config.json keys in the environment
 * variable BENCH_SERVER_OPTIONS, to measure the server in another configuration (e.g.
 * `BENCH_SERVER_OPTIONS='{"metrics_enabled":true,"metrics_port":0}'`). They are in the report's
 * serverConfig like the others.
 */
function serverOptionsFromEnv(text: string | undefined): Record<string, unknown> {
  if (text === undefined || text === "") return {};
  const parsed: unknown = JSON.parse(text);
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new Error("BENCH_SERVER_OPTIONS must be a JSON object of config.json keys");
  return parsed as Record<string, unknown>;
}

/** The real server: `node --import tsx cluster.ts --config <tmp>` with PEER_WORKERS set. */
export function serverTarget(options: { id?: string; description?: string; workers?: number; config?: Record<string, unknown>; cpus?: string } = {}): TargetSpec {
  const workers = options.workers ?? 1;
  return {
    id: options.id ?? "server",
    description: options.description ?? `peer-server (cluster.ts, PEER_WORKERS=${workers})`,
    async start(context) {
      const port = await freePort(HOST);
      const dir = mkdtempSync(join(tmpdir(), "peer-bench-"));
      const configPath = join(dir, "config.json");
      const { config, admin } = await serverConfigFor({ ...BENCH_SERVER_CONFIG, ...options.config }, port);
      writeFileSync(configPath, JSON.stringify(config));
      // A longer shutdown_timeout (a big population's stop) moves the bench's own deadline with it.
      const shutdownTimeoutMs = parseDurationMs(config["shutdown_timeout"]) ?? DEFAULT_SHUTDOWN_TIMEOUT_MS;
      try {
        const service = await startNodeService({
          entry: join(ROOT, "cluster.ts"),
          args: ["--config", configPath],
          env: { PEER_WORKERS: String(workers) },
          cpus: options.cpus ?? context.cpus,
          profileDir: context.profileDir,
          knownPort: port,
          stopDeadlineMs: shutdownTimeoutMs + ENFORCE_MS,
        });
        return {
          endpoints: [{ host: HOST, port: service.port, ...(admin === undefined ? {} : { admin }) }],
          pids: [service.child.pid as number],
          output: service.output,
          died: service.died,
          async stop() {
            try {
              return await service.stop();
            } finally {
              rmSync(dir, { recursive: true, force: true });
            }
          },
        };
      } catch (error) {
        rmSync(dir, { recursive: true, force: true });
        throw error;
      }
    },
  };
}

export type RelayKind = "bare-ws" | "bare-sio";

/** A baseline relay from bench/baselines (register, join, signal, broadcast only). */
export function relayTarget(kind: RelayKind): TargetSpec {
  return {
    id: kind,
    description: kind === "bare-ws" ? "bare ws relay (bench/baselines/bare-ws.ts)" : "bare Socket.IO relay, one room per fingerprint (bench/baselines/bare-sio.ts)",
    async start(context) {
      const service = await startNodeService({
        entry: join(ROOT, "bench", "baselines", `${kind}.ts`),
        args: ["--host", HOST, "--port", "0"],
        cpus: context.cpus,
        profileDir: context.profileDir,
      });
      return { endpoints: [{ host: HOST, port: service.port }], pids: [service.child.pid as number], output: service.output, died: service.died, stop: () => service.stop() };
    },
  };
}
