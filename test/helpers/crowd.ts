import { fork, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { ROOT } from "./server-process.ts";

/** Test -> crowd child (test/helpers/crowd-child.ts). */
export interface CrowdCommand {
  kind: "open";
  url: string;
  count: number;
  /** Peer i joins `${namespacePrefix}-${floor(i / namespaceSize)}`. */
  namespacePrefix: string;
  namespaceSize: number;
  /** Set-ups in flight at once. */
  concurrency: number;
  /** Loopback source addresses, used in turn (each has its own range of ephemeral ports). */
  localAddresses: string[];
}

/** Crowd child -> test. */
export type CrowdReport =
  | { kind: "up" }
  | { kind: "opened"; ready: number; failed: number; lastError: string };

export interface CrowdOptions {
  url: string;
  /** Peers in all. */
  peers: number;
  /** Processes holding them (each under this machine's open-file limit). Default 2. */
  processes?: number;
  /** Peers per namespace. Default 100. */
  namespaceSize?: number;
  /** Set-ups in flight per process. Default 200. */
  concurrency?: number;
  /** How long the whole crowd may take to register and join. Default 60 s. */
  timeoutMs?: number;
}

export interface Crowd {
  /** Registered and joined peers. */
  readonly ready: number;
  /** The processes holding the peers: end them with `kill`. */
  readonly children: readonly ChildProcess[];
  /** Kills every crowd process by PID and resolves once all have exited. */
  kill(): Promise<void>;
}

/**
 * Opens `peers` raw /ws peers that register and join namespaces of `namespaceSize` (peer i of the
 * whole crowd is in namespace floor(i / namespaceSize)), held by child processes, and resolves once
 * every one has its `peer_list`. A peer whose set-up fails tries again, three times in all; rejects
 * naming the last failure if one still could not set up.
 */
export async function openCrowd(options: CrowdOptions): Promise<Crowd> {
  const processes = options.processes ?? 2;
  const namespaceSize = options.namespaceSize ?? 100;
  const timeoutMs = options.timeoutMs ?? 60_000;
  const children: ChildProcess[] = [];
  const kill = async (): Promise<void> => {
    await Promise.all(
      children.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once("exit", () => resolve());
            child.kill("SIGKILL");
          }),
      ),
    );
  };
  const perProcess = Math.ceil(options.peers / processes / namespaceSize) * namespaceSize;
  const prefix = `crowd-${process.pid}-${Date.now().toString(36)}`;
  try {
    const opened = await Promise.all(
      Array.from({ length: processes }, async (_, shard) => {
        const count = Math.max(0, Math.min(perProcess, options.peers - shard * perProcess));
        const child = fork(join(ROOT, "test/helpers/crowd-child.ts"), [], { cwd: ROOT, execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
        children.push(child);
        child.on("error", () => undefined); // a send racing the child's exit
        await report(child, "up", 15_000);
        const command: CrowdCommand = {
          kind: "open",
          url: options.url,
          count,
          // Each child's peers fill whole namespaces of their own: shard s holds namespaces s*k .. s*k+k-1.
          namespacePrefix: `${prefix}-s${shard}`,
          namespaceSize,
          concurrency: options.concurrency ?? 200,
          localAddresses: [`127.0.0.${shard + 2}`, `127.0.${shard + 1}.1`],
        };
        child.send(command);
        return report(child, "opened", timeoutMs);
      }),
    );
    const failed = opened.reduce((sum, result) => sum + result.failed, 0);
    if (failed > 0) throw new Error(`${failed} of ${options.peers} crowd peers failed to set up; last: ${opened.map((result) => result.lastError).join(" | ")}`);
    return {
      ready: opened.reduce((sum, result) => sum + result.ready, 0),
      children,
      kill,
    };
  } catch (error) {
    await kill();
    throw error;
  }
}

/** The child's next report of `kind`; rejects if it exits first or `timeoutMs` passes. */
function report<K extends CrowdReport["kind"]>(child: ChildProcess, kind: K, timeoutMs: number): Promise<Extract<CrowdReport, { kind: K }>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`crowd process ${child.pid} did not report ${kind} within ${timeoutMs} ms`));
    }, timeoutMs);
    const onMessage = (message: CrowdReport): void => {
      if (message.kind !== kind) return;
      cleanup();
      resolve(message as Extract<CrowdReport, { kind: K }>);
    };
    const onExit = (code: number | null, signal: string | null): void => {
      cleanup();
      reject(new Error(`crowd process ${child.pid} exited (${code ?? signal}) before it reported ${kind}`));
    };
    const cleanup = (): void => {
      clearTimeout(timer);
      child.off("message", onMessage);
      child.off("exit", onExit);
    };
    child.on("message", onMessage);
    child.once("exit", onExit);
  });
}
