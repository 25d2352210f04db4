import { readFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { openCrowd, type Crowd } from "../helpers/crowd.ts";
import { getJson, startServer, type ServerProcess } from "../helpers/server-process.ts";
import { waitFor } from "../helpers/wait.ts";

/** Registered peers the cluster holds when it is stopped, in namespaces of 100. */
const PEERS = 20_000;
const WORKERS = 4;
/** shutdown_timeout's default. */
const DEFAULT_SHUTDOWN_TIMEOUT_MS = 10_000;

/**
 * Whether a process is still running. A dead worker whose primary is gone stays a zombie until
 * init reaps it: `kill(pid, 0)` still finds it, /proc says it is dead (state Z).
 */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

interface Held {
  server: ServerProcess;
  crowd: Crowd;
  workerPids: number[];
}

/** What a test started, killed by PID after it whatever happened. */
const started: Held[] = [];

afterEach(async () => {
  for (const held of started.splice(0)) {
    for (const pid of [held.server.process.pid ?? 0, ...held.workerPids]) {
      if (pid > 0 && running(pid)) process.kill(pid, "SIGKILL");
    }
    await held.crowd.kill();
  }
});

/** A 4-worker cluster holding PEERS registered peers, each in a namespace of 100. */
async function holdPeers(config: Record<string, unknown> = {}): Promise<Held> {
  // A retried set-up's first registration departs on its close (resume_grace 0), so the count settles.
  const server = await startServer({ env: { PEER_WORKERS: String(WORKERS) }, config: { log_level: "warn", metrics_enabled: false, resume_grace: 0, ...config }, timeoutMs: 30_000 });
  let crowd: Crowd;
  try {
    // A few hundred set-ups in flight per process keep the machine busy without queueing a
    // registration past the primary store's call timeout on two cores.
    crowd = await openCrowd({ url: server.ws, peers: PEERS, processes: 3, concurrency: 200, timeoutMs: 150_000 });
  } catch (error) {
    server.process.kill("SIGKILL");
    throw error;
  }
  const held: Held = { server, crowd, workerPids: [] };
  started.push(held);
  // A set-up that was retried may leave its first registration behind until its close is processed.
  const stats = await waitFor(
    async () => (await getJson(`${server.http}/stats`)).body as { total_peers: number; workers: { pid: number }[] },
    (value) => value.total_peers === PEERS,
    { timeoutMs: 30_000, what: `${PEERS} registered peers` },
  );
  held.workerPids.push(...stats.workers.map((worker) => worker.pid));
  expect(held.workerPids).toHaveLength(WORKERS);
  return held;
}

/** Resolves with the primary's exit code, or "still running" once `ms` have passed. */
function exitWithin(server: ServerProcess, ms: number): Promise<number | null | "still running"> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    server.exited.finally(() => clearTimeout(timer)),
    new Promise<"still running">((resolve) => (timer = setTimeout(() => resolve("still running"), ms))),
  ]);
}

describe(`stopping a ${WORKERS}-worker cluster that holds ${PEERS.toLocaleString("en-US")} peers`, () => {
  it("SIGTERM, then SIGKILL to the primary a second later: every worker is gone within shutdown_timeout + 2 s", async () => {
    const { server, workerPids } = await holdPeers();
    const stoppedAt = Date.now();
    server.process.kill("SIGTERM");
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    server.process.kill("SIGKILL");
    const left = await waitFor(
      () => workerPids.filter(running),
      (pids) => pids.length === 0,
      { timeoutMs: DEFAULT_SHUTDOWN_TIMEOUT_MS + 2_000 - (Date.now() - stoppedAt), intervalMs: 50, what: "every worker of the killed primary to exit" },
    );
    expect(left).toEqual([]);
  }, 180_000);

  it("SIGTERM alone: the primary exits 0 within shutdown_timeout + 1 s, its workers with it", async () => {
    const shutdownTimeoutMs = 20_000;
    const { server, workerPids } = await holdPeers({ shutdown_timeout: `${shutdownTimeoutMs}ms` });
    server.process.kill("SIGTERM");
    expect(await exitWithin(server, shutdownTimeoutMs + 1_000)).toBe(0);
    expect(workerPids.filter(running)).toEqual([]);
  }, 180_000);

  it("a second SIGTERM while a worker holds the shutdown up ends everything at once, exit 1", async () => {
    // A long shutdown_timeout, and one worker that cannot stop (it is suspended): the primary waits for it.
    const { server, workerPids } = await holdPeers({ shutdown_timeout: "120s" });
    const [stuck, ...others] = workerPids as [number, ...number[]];
    process.kill(stuck, "SIGSTOP");
    server.process.kill("SIGTERM");
    // The others stop; the primary is left waiting for the suspended one.
    await waitFor(() => others.filter(running), (pids) => pids.length === 0, { timeoutMs: 30_000, intervalMs: 50, what: "the other workers to stop" });
    expect(running(server.process.pid ?? 0)).toBe(true);
    expect(running(stuck)).toBe(true);

    server.process.kill("SIGTERM");
    const secondAt = Date.now();
    expect(await exitWithin(server, 1_000)).toBe(1);
    await waitFor(() => running(stuck), (alive) => !alive, { timeoutMs: Math.max(0, 1_000 - (Date.now() - secondAt)), intervalMs: 20, what: "the suspended worker to be killed" });
  }, 180_000);
});
