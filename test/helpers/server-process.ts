import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";

export const ROOT = resolve(import.meta.dirname, "../..");

export interface ServerProcess {
  readonly port: number;
  readonly http: string;
  readonly ws: string;
  /** The admin listener's port, when it serves one (metrics_enabled: startServer's default). */
  readonly adminPort: number | undefined;
  /** `http://127.0.0.1:<adminPort>`, when it serves one. */
  readonly admin: string | undefined;
  /** The admin_token it was started with ("" for none). */
  readonly adminToken: string;
  readonly process: ChildProcess;
  /** Every stdout/stderr line so far, for debugging and log assertions. */
  readonly output: string[];
  /** Resolves with the exit code once the process has exited. */
  readonly exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface StartOptions {
  /** config.json contents (snake_case keys, as documented). */
  config?: Record<string, unknown>;
  env?: Record<string, string>;
  /** Extra command-line arguments; by default `--config <file>` is passed when config is given. */
  args?: string[];
  entry?: string;
  /** Run `entry` with plain node (compiled JavaScript), not through tsx. */
  compiled?: boolean;
  timeoutMs?: number;
}

/**
 * The per-address limits every test server gets unless its test sets them: tests open thousands of
 * connections and registrations from 127.0.0.1, which the defaults (256 open, 20 a second) refuse.
 * Only the tests of these limits (address-limits.test.ts) see the real defaults, or set their own.
 */
export const GENEROUS_ADDRESS_LIMITS: Readonly<Record<string, number>> = {
  max_connections_per_ip: 1_000_000,
  connection_rate_per_ip: 1_000_000,
  connection_burst_per_ip: 1_000_000,
  registration_rate_per_ip: 1_000_000,
  registration_burst_per_ip: 1_000_000,
};

/**
 * Starts the real server (`cluster.ts`) as a child process on a free port and waits for its
 * `listening` line. Its admin listener is on too, on a free port (`metrics_enabled: true,
 * metrics_port: 0` unless `config` says otherwise), and it waits for its `admin listening` line.
 * The per-address limits are GENEROUS_ADDRESS_LIMITS unless `config` sets them.
 */
export async function startServer(options: StartOptions = {}): Promise<ServerProcess> {
  const config: Record<string, unknown> = { host: "127.0.0.1", port: 0, log_level: "info", metrics_enabled: true, metrics_port: 0, ...GENEROUS_ADDRESS_LIMITS, ...options.config };
  // The admin listener runs when the config file (unless other arguments replace it) or the environment enable metrics.
  const envMetrics = options.env?.["PEER_METRICS_ENABLED"];
  const expectAdmin = envMetrics !== undefined ? envMetrics === "true" : options.args === undefined && config["metrics_enabled"] === true;
  const dir = mkdtempSync(join(tmpdir(), "peer-server-test-"));
  const configPath = join(dir, "config.json");
  writeFileSync(configPath, JSON.stringify(config));
  const args = [...(options.compiled === true ? [] : ["--import", "tsx"]), options.entry ?? join(ROOT, "cluster.ts"), ...(options.args ?? ["--config", configPath])];
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, PEER_WORKERS: "1", ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const output: string[] = [];
  const exited = new Promise<number | null>((done) => child.once("exit", (code) => done(code)));
  const { port, adminPort } = await new Promise<{ port: number; adminPort: number | undefined }>((done, fail) => {
    const timer = setTimeout(() => {
      // Nobody will stop a server that did not start in time: it goes now, workers and all.
      child.kill("SIGKILL");
      fail(new Error(`server did not start:\n${output.join("\n")}`));
    }, options.timeoutMs ?? 15_000);
    let mainPort: number | undefined;
    let admin: number | undefined;
    const onLine = (line: string): void => {
      output.push(line);
      if (!line.includes('listening"')) return;
      try {
        const parsed = JSON.parse(line) as { port?: number; msg?: string };
        if (typeof parsed.port !== "number") return;
        if (parsed.msg === "listening") mainPort = parsed.port;
        else if (parsed.msg === "admin listening") admin = parsed.port;
        if (mainPort !== undefined && (admin !== undefined || !expectAdmin)) {
          clearTimeout(timer);
          done({ port: mainPort, adminPort: admin });
        }
      } catch {
        /* not a log line */
      }
    };
    createInterface({ input: child.stdout }).on("line", onLine);
    createInterface({ input: child.stderr }).on("line", (line) => output.push(line));
    void exited.then((code) => {
      clearTimeout(timer);
      fail(new Error(`server exited with ${code}:\n${output.join("\n")}`));
    });
  });
  return {
    port,
    http: `http://127.0.0.1:${port}`,
    ws: `ws://127.0.0.1:${port}/ws`,
    adminPort,
    admin: adminPort === undefined ? undefined : `http://127.0.0.1:${adminPort}`,
    adminToken: options.env?.["PEER_ADMIN_TOKEN"] ?? (typeof config["admin_token"] === "string" ? config["admin_token"] : ""),
    process: child,
    output,
    exited,
    async stop(signal = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** Runs the entry with the given args/env and collects its output until it exits (for start-up failures). */
export async function runToExit(args: string[], env: Record<string, string> = {}, timeoutMs = 15_000): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, ["--import", "tsx", join(ROOT, "cluster.ts"), ...args], {
    cwd: ROOT,
    env: { ...process.env, PEER_WORKERS: "1", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  const code = await new Promise<number | null>((done) => child.once("exit", (exitCode) => done(exitCode)));
  clearTimeout(timer);
  return { code, output };
}

export async function getJson(url: string, init?: RequestInit): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(url, init);
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/** The admin listener's base URL of a server; throws when it serves none (metrics_enabled false). */
export function adminOf(server: ServerProcess): string {
  if (server.admin === undefined) throw new Error("this server has no admin listener (start it with metrics_enabled)");
  return server.admin;
}

/** GET of an admin listener's path, with the server's admin_token when it has one. */
export function getAdminJson(server: ServerProcess, path: string): Promise<{ status: number; body: Record<string, unknown> }> {
  return getJson(`${adminOf(server)}${path}`, server.adminToken === "" ? undefined : { headers: { authorization: `Bearer ${server.adminToken}` } });
}
