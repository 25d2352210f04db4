import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./ports.ts";
import { waitFor } from "./wait.ts";

/** A private redis-server for one test file: loopback only, on a free port, no persistence. */
export interface RedisServer {
  port: number;
  /** `redis://127.0.0.1:<port>` */
  url: string;
  /** Shuts the server down (SIGTERM) and waits for it to exit. Safe to call twice. */
  stop(): Promise<void>;
  /** Kills the server outright (SIGKILL), as a crash would, and waits for it to exit. */
  kill(): Promise<void>;
  /** Starts it again on the same port (empty: nothing is persisted) and waits until it answers PING. */
  restart(): Promise<void>;
}

const BINARY = process.env.REDIS_SERVER_BIN ?? "/usr/bin/redis-server";
const START_TIMEOUT_MS = 5_000;
/** The system instance's port: never ours, whatever the OS hands out. */
const SYSTEM_PORT = 6379;

/** Spawns redis-server; throws (never skips) when the binary is missing. */
export async function startRedisServer(): Promise<RedisServer> {
  if (!existsSync(BINARY)) {
    throw new Error(`redis-server not found at ${BINARY}: install the Debian package redis-server (or set REDIS_SERVER_BIN)`);
  }
  const dir = await mkdtemp(join(tmpdir(), "peer-server-redis-"));
  let child: ChildProcess | undefined;
  let port = 0;
  let lastError: unknown;
  // A free port found by binding port 0 can be taken before redis-server binds it: try a few.
  for (let attempt = 0; attempt < 5 && child === undefined; attempt++) {
    port = await freePort();
    try {
      child = await launch(port, dir);
    } catch (error) {
      lastError = error;
    }
  }
  if (child === undefined) {
    await rm(dir, { recursive: true, force: true });
    throw lastError instanceof Error ? lastError : new Error("redis-server did not start");
  }

  const onExit = (): void => {
    child?.kill("SIGKILL");
  };
  process.once("exit", onExit);

  const end = async (signal: NodeJS.Signals): Promise<void> => {
    const running = child;
    child = undefined;
    if (running !== undefined) await terminate(running, signal);
  };

  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    async stop() {
      await end("SIGTERM");
      process.removeListener("exit", onExit);
      await rm(dir, { recursive: true, force: true });
    },
    kill: () => end("SIGKILL"),
    async restart() {
      await end("SIGTERM");
      child = await launch(port, dir);
    },
  };
}

async function launch(port: number, dir: string): Promise<ChildProcess> {
  if (port === SYSTEM_PORT) throw new Error("refusing to use the system Redis port 6379");
  const child = spawn(
    BINARY,
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir, "--daemonize", "no", "--logfile", ""],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  return untilAnswering(child, port, "redis-server");
}

/**
 * Resolves with `child` once the redis-server (or sentinel) it runs answers PING on `port`; if it
 * exits first or does not answer within the start timeout, kills it and rejects with its output.
 */
export async function untilAnswering(child: ChildProcess, port: number, what: string): Promise<ChildProcess> {
  let output = "";
  const collect = (chunk: Buffer): void => {
    output = (output + chunk.toString()).slice(-4_000);
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);
  const exited = new Promise<never>((_, reject) => {
    child.once("exit", (code, signal) => reject(new Error(`${what} exited (${code ?? signal}) before answering PING:\n${output}`)));
    child.once("error", reject);
  });
  exited.catch(() => undefined);
  try {
    const answered = waitFor(() => ping(port), (pong) => pong, { timeoutMs: START_TIMEOUT_MS, intervalMs: 50, what: `${what} on port ${port} to answer PING` });
    answered.catch(() => undefined); // when the exit wins the race
    await Promise.race([answered, exited]);
  } catch (error) {
    child.kill("SIGKILL");
    throw error;
  }
  return child;
}

/** Answers true once the redis-server on 127.0.0.1:`port` replies +PONG (not -LOADING); shared with bench/core/redis-nodes.ts. */
export function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: "127.0.0.1", port });
    let reply = "";
    const finish = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => finish(false));
    socket.once("error", () => finish(false));
    socket.once("connect", () => socket.write("PING\r\n"));
    socket.on("data", (chunk) => {
      reply += chunk.toString();
      // "-LOADING ..." while starting; only "+PONG" means ready.
      if (reply.includes("\r\n")) finish(reply.startsWith("+PONG"));
    });
  });
}

/** Stops a child with `signal` (SIGKILL after 5 s) and resolves once it exited. */
export function terminate(child: ChildProcess, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill(signal);
  });
}
