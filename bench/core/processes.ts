import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from "node:child_process";
import { createServer } from "node:net";
import { createInterface } from "node:readline";
import { groupMembers } from "./proc.ts";

let tasksetAvailable: boolean | undefined;

/** True when `taskset` can pin processes here (Linux with util-linux). */
export function hasTaskset(): boolean {
  tasksetAvailable ??= spawnSync("taskset", ["-c", "0", "true"], { stdio: "ignore" }).status === 0;
  return tasksetAvailable;
}

/** Every process the bench started and has not yet seen exit; stopped on Ctrl-C. */
const live = new Set<ChildProcess>();
/** The process groups the bench started (targets spawned `detached`), by leader PID; killed whole on Ctrl-C. */
const groups = new Set<number>();

let chrtAvailable: boolean | undefined;

/** True when `chrt` can set a process's scheduling policy here (Linux with util-linux). */
export function hasChrt(): boolean {
  chrtAvailable ??= spawnSync("chrt", ["-b", "0", "true"], { stdio: "ignore" }).status === 0;
  return chrtAvailable;
}

/**
 * Spawns `command args` pinned to `cpus` (a taskset list such as "0" or "0,1") when taskset is
 * available. taskset execs the command, so the child's PID is the command's own PID.
 *
 * `batch`: the child (and every process it starts) runs under SCHED_BATCH when chrt is available
 * (chrt execs the command too). For the load: the kernel then does not let a load process that a
 * server's write wakes preempt the server in the middle of its work (a client on another machine
 * never does); the load still gets its fair share of the cores it shares with the server.
 */
export function spawnPinned(cpus: string | undefined, command: string, args: readonly string[], options: SpawnOptions, batch = false): ChildProcess {
  const argv = batch && hasChrt() ? ["chrt", "-b", "0", command, ...args] : [command, ...args];
  const child = cpus !== undefined && hasTaskset() ? spawn("taskset", ["-c", cpus, ...argv], options) : spawn(argv[0] as string, argv.slice(1), options);
  live.add(child);
  child.once("exit", () => live.delete(child));
  if (options.detached === true && child.pid !== undefined) groups.add(child.pid);
  return child;
}

/** Resolves once the child has exited (at once if it already has). */
export function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((done) => child.once("exit", () => done()));
}

/** Stops one child by its PID: SIGTERM, then SIGKILL after `graceMs`. */
export async function stopProcess(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const done = exited(child);
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await done;
  clearTimeout(timer);
}

/** Kills every process the bench started, and every process of the groups it started (used on Ctrl-C and fatal errors). */
export function killAll(): void {
  for (const child of live) child.kill("SIGKILL");
  for (const pgid of groups) signalGroup(pgid, "SIGKILL");
}

/** How a process group stopped (see stopGroup). */
export interface GroupStop {
  /** From SIGTERM until no process of the group was left, or until the SIGKILL when one was needed. */
  readonly ms: number;
  /** How long the group had after SIGTERM before the SIGKILL. */
  readonly deadlineMs: number;
  /** The leader's exit code (null when a signal ended it). */
  readonly exitCode: number | null;
  /** Processes still running at the deadline, then SIGKILLed. */
  readonly killed: readonly number[];
  /** Processes still running after the SIGKILL too. */
  readonly survivors: readonly number[];
}

const GROUP_POLL_MS = 20;

/**
 * Stops a child spawned `detached` (the leader of its own process group) by its whole group:
 * SIGTERM to every process of it, then SIGKILL to the group if any process is still running
 * `deadlineMs` later. A process whose parent died and that ignores it (a cluster worker) is stopped
 * all the same, and seen: `killed` lists what the SIGKILL found, `survivors` what outlived it (1 s).
 */
export async function stopGroup(child: ChildProcess, deadlineMs: number): Promise<GroupStop> {
  const pgid = child.pid;
  if (pgid === undefined) throw new Error("the process has no PID");
  const leaderDone = exited(child);
  const began = performance.now();
  signalGroup(pgid, "SIGTERM");
  const gone = async (untilMs: number): Promise<boolean> => {
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) {
        if (groupMembers(pgid).length === 0) return true;
      }
      if (performance.now() - began >= untilMs) return false;
      await new Promise((resolve) => setTimeout(resolve, GROUP_POLL_MS));
    }
  };
  let killed: number[] = [];
  let survivors: number[] = [];
  const stoppedInTime = await gone(deadlineMs);
  const ms = performance.now() - began;
  if (!stoppedInTime) {
    killed = groupMembers(pgid);
    signalGroup(pgid, "SIGKILL");
    if (!(await gone(deadlineMs + 1_000))) survivors = groupMembers(pgid);
  }
  await Promise.race([leaderDone, new Promise((resolve) => setTimeout(resolve, 1_000))]);
  groups.delete(pgid);
  return { ms, deadlineMs, exitCode: child.exitCode, killed, survivors };
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // ESRCH: no process of the group is left.
  }
}

/** Appends a line, keeping only the last 200 (a long run must not accumulate logs). */
function keep(lines: string[], line: string): void {
  lines.push(line);
  if (lines.length > 200) lines.splice(0, lines.length - 200);
}

/** A free TCP port on `host`, chosen by the kernel. */
export function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, host, () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address !== null ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

/**
 * Waits until a service is ready: either it prints a JSON `listening` line carrying its port on
 * stdout (the server at log level info, and the bench's relays), or `http://host:port/health`
 * answers (the server at log level warn does not print that line). Resolves with the port.
 */
export async function waitReady(
  child: ChildProcess,
  host: string,
  knownPort: number | undefined,
  output: string[],
  timeoutMs = 20_000,
): Promise<number> {
  let settled = false;
  return new Promise<number>((resolve, reject) => {
    const finish = (error: Error | undefined, port?: number): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (error !== undefined) reject(error);
      else resolve(port as number);
    };
    const timer = setTimeout(() => finish(new Error(`not ready within ${timeoutMs} ms:\n${output.slice(-20).join("\n")}`)), timeoutMs);
    if (child.stdout) {
      createInterface({ input: child.stdout }).on("line", (line) => {
        keep(output, line);
        if (!line.includes('"listening"')) return;
        try {
          const parsed = JSON.parse(line) as { msg?: string; port?: number };
          if (parsed.msg === "listening" && typeof parsed.port === "number") finish(undefined, parsed.port);
        } catch {
          /* not a JSON log line */
        }
      });
    }
    if (child.stderr) createInterface({ input: child.stderr }).on("line", (line) => keep(output, line));
    void exited(child).then(() => finish(new Error(`exited with ${child.exitCode ?? child.signalCode} before it was ready:\n${output.slice(-20).join("\n")}`)));
    if (knownPort !== undefined) {
      const poll = async (): Promise<void> => {
        while (!settled) {
          try {
            const response = await fetch(`http://${host}:${knownPort}/health`, { signal: AbortSignal.timeout(1_000) });
            await response.arrayBuffer();
            if (response.ok) finish(undefined, knownPort);
          } catch {
            /* not listening yet */
          }
          await new Promise((done) => setTimeout(done, 100));
        }
      };
      void poll();
    }
  });
}
