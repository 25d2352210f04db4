import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { renderStandalone, type Standalone } from "../../nginx/render.ts";
import { freePort } from "./ports.ts";
import { waitFor } from "./wait.ts";

export interface NginxProcess {
  readonly port: number;
  readonly http: string;
  readonly ws: string;
  readonly standalone: Standalone;
  /** The TLS server, when started with `tls`. */
  readonly tls: NginxTls | undefined;
  readonly process: ChildProcess;
  /** nginx's stderr lines so far. */
  readonly output: string[];
  stop(): Promise<void>;
}

/** nginx's TLS server (the optional second server of the site, nginx/tls). */
export interface NginxTls {
  readonly port: number;
  /** `https://127.0.0.1:<port>` */
  readonly https: string;
  /** `wss://127.0.0.1:<port>/ws` */
  readonly wss: string;
}

export interface NginxOptions {
  /** Also render and run the TLS server, with these PEM files (test/helpers/tls.ts makes them). */
  tls?: { readonly certPath: string; readonly keyPath: string };
}

/**
 * The nginx binary: $NGINX_BIN, /usr/sbin/nginx (Debian) or `nginx` on PATH. Throws when there is
 * none: the integration tests need real nginx and must fail, not skip, without it.
 */
export function findNginx(): string {
  const candidates = [process.env["NGINX_BIN"], "/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx"];
  for (const candidate of candidates) if (candidate && existsSync(candidate)) return candidate;
  const onPath = spawnSync("sh", ["-c", "command -v nginx"], { encoding: "utf8" }).stdout.trim();
  if (onPath) return onPath;
  throw new Error("nginx is not installed: these tests run the project's nginx config in real nginx. Install it (Debian: apt-get install nginx; .ci/run does this) or set NGINX_BIN.");
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/**
 * Runs real nginx in the foreground with the project's template rendered (nginx/render.ts) for the
 * given upstream addresses, listening on a free loopback port (and with `tls`, its TLS server on
 * another). Resolves once it accepts connections on each.
 */
export async function startNginx(upstreams: readonly string[], options: NginxOptions = {}): Promise<NginxProcess> {
  const binary = findNginx();
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const tlsPort = options.tls === undefined ? undefined : await freePort();
    const dir = mkdtempSync(join(tmpdir(), "peer-nginx-test-"));
    const tls = options.tls === undefined || tlsPort === undefined ? undefined : { listen: `127.0.0.1:${tlsPort}`, cert: options.tls.certPath, key: options.tls.keyPath };
    const standalone = renderStandalone(dir, { upstreams, listen: `127.0.0.1:${port}`, tls });
    const ports = tlsPort === undefined ? [port] : [port, tlsPort];
    const child = spawn(binary, standalone.args, { stdio: ["ignore", "ignore", "pipe"] });
    const output: string[] = [];
    createInterface({ input: child.stderr }).on("line", (line) => output.push(line));
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    let running = true;
    void exited.then(() => (running = false));
    // Up once it accepts connections; given up on when it exits or after 10 s (reported below).
    const up = await waitFor(
      async () => running && (await Promise.all(ports.map(accepts))).every(Boolean),
      (accepting) => accepting || !running,
      { timeoutMs: 10_000, intervalMs: 50, what: `nginx to accept connections on port ${ports.join(" and ")}` },
    ).catch(() => false);
    if (up) {
      return {
        port,
        http: `http://127.0.0.1:${port}`,
        ws: `ws://127.0.0.1:${port}/ws`,
        standalone,
        tls: tlsPort === undefined ? undefined : { port: tlsPort, https: `https://127.0.0.1:${tlsPort}`, wss: `wss://127.0.0.1:${tlsPort}/ws` },
        process: child,
        output,
        async stop() {
          if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
          const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
          await exited;
          clearTimeout(timer);
          rmSync(dir, { recursive: true, force: true });
        },
      };
    }
    child.kill("SIGKILL");
    await exited;
    rmSync(dir, { recursive: true, force: true });
    // The free port can be taken between the probe and nginx's bind: try another one.
    if (attempt < 3 && output.some((line) => line.includes("Address already in use"))) continue;
    throw new Error(`nginx did not start (${binary} ${standalone.args.join(" ")}):\n${output.join("\n")}`);
  }
}

/**
 * Real nginx in front of a test file's nodes. `start` never throws: a missing or failing nginx is
 * kept and thrown by `get()`, so every test that goes through nginx fails with nginx's message
 * (never a skip) while the file's other tests still run.
 */
export class NginxFront {
  #proxy: NginxProcess | undefined;
  #error: unknown = new Error("nginx was not started");

  /** Starts nginx with one upstream per node (its loopback address and port). */
  async start(nodes: readonly { readonly port: number }[], options: NginxOptions = {}): Promise<void> {
    try {
      this.#proxy = await startNginx(nodes.map((node) => `127.0.0.1:${node.port}`), options);
    } catch (error) {
      this.#error = error;
    }
  }

  /** The running nginx; throws why it is not running. */
  get(): NginxProcess {
    if (this.#proxy === undefined) throw this.#error;
    return this.#proxy;
  }

  async stop(): Promise<void> {
    await this.#proxy?.stop();
  }
}
