import type { Snapshot } from "../core/proc.ts";
import type { Endpoint } from "../core/targets.ts";
import type { BenchClient, ClientKind } from "./clients.ts";
import type { JobResult, ProgressUpdate, Transport } from "./protocol.ts";

/** What a job runner gets from the load process. */
export interface JobContext {
  readonly endpoints: readonly Endpoint[];
  /** The run's load client implementation (--client). */
  readonly client: ClientKind;
  /** Round-robin over the target's endpoints. */
  endpoint(index: number): Endpoint;
  /** Opens client number `index` (round-robin over the endpoints) with the run's client kind. */
  connect(transport: Transport, index: number, localAddress?: string): Promise<BenchClient>;
  /** Reports progress (throttled before it crosses to the orchestrator). */
  progress(update: ProgressUpdate): void;
  /** Asks the orchestrator to read the target's RSS and CPU now, and waits for the reading. */
  checkpoint(name: string): Promise<Snapshot>;
}

export type JobRunner<P> = (params: P, context: JobContext) => Promise<JobResult>;

export const sleep = (ms: number): Promise<void> => new Promise((done) => setTimeout(done, ms));

/** A short random id so that keys and namespaces of one run never collide with another's. */
export const runId = (): string => Math.random().toString(36).slice(2, 8);

/** CPU used by this load process since the meter started, as a percentage of one core. */
export function cpuMeter(): () => number {
  const startCpu = process.cpuUsage();
  const startWall = performance.now();
  return () => {
    const used = process.cpuUsage(startCpu);
    const wallMs = performance.now() - startWall;
    return wallMs <= 0 ? 0 : ((used.user + used.system) / 1000 / wallMs) * 100;
  };
}

/** Notes every job adds: a saturated load process means the figure is a lower bound. */
export function loadNotes(loadCpuPct: number): string[] {
  return loadCpuPct >= 90 ? [`load process at ${loadCpuPct.toFixed(0)}% of its core: the figure may be bounded by the load generator`] : [];
}

/**
 * Runs `tick` every `intervalMs` until `done()` or `maxMs` elapsed; the measurement loop of
 * every job, so each is bounded in time as well as in count.
 */
export async function runFor(maxMs: number, done: () => boolean, tick: (elapsedMs: number) => void, intervalMs = 250): Promise<number> {
  const start = performance.now();
  for (;;) {
    await sleep(Math.min(intervalMs, Math.max(1, maxMs - (performance.now() - start))));
    const elapsed = performance.now() - start;
    tick(elapsed);
    if (elapsed >= maxMs || done()) return elapsed;
  }
}

/** Waits until `count()` reaches `expected` or stops moving for `quietMs`, bounded by `maxMs`. Returns the final count. */
export async function settle(count: () => number, expected: number, maxMs: number, quietMs = 2_000): Promise<number> {
  const start = performance.now();
  let last = count();
  let lastChange = performance.now();
  while (count() < expected && performance.now() - start < maxMs) {
    await sleep(50);
    const now = count();
    if (now !== last) {
      last = now;
      lastChange = performance.now();
    } else if (performance.now() - lastChange > quietMs) break;
  }
  return count();
}

/** Fails the run if any client lost its connection (a slow-consumer close, a crash...). */
export function assertAllOpen(clients: readonly BenchClient[], when: string): void {
  const lost = clients.filter((client) => client.isClosed);
  if (lost.length > 0) throw new Error(`${lost.length} of ${clients.length} connections closed ${when} (first: ${lost[0]?.closeReason ?? "?"})`);
}

/**
 * How much of the pinned cores other processes took between two checkpoints, in % of a core:
 * the machine is shared, and a run whose cores were busy with something else is noisier.
 * NaN when processes are not pinned.
 */
export function interference(
  start: Snapshot,
  end: Snapshot,
  loadCpuPct: number,
): { othersTargetCpuPct: number; othersLoadCpuPct: number; othersCpuPct: number; notes: string[] } {
  const wallMs = end.atMs - start.atMs;
  if (wallMs <= 0 || end.targetCoresBusyMs === 0) return { othersTargetCpuPct: Number.NaN, othersLoadCpuPct: Number.NaN, othersCpuPct: Number.NaN, notes: [] };
  const targetCpuMs = end.cpuMs - start.cpuMs;
  const othersTargetCpuPct = Math.max(0, ((end.targetCoresBusyMs - start.targetCoresBusyMs - targetCpuMs) / wallMs) * 100);
  const othersLoadCpuPct = Math.max(0, ((end.loadCoresBusyMs - start.loadCoresBusyMs) / wallMs) * 100 - loadCpuPct);
  // All pinned cores together: the only reading that means something when target and load share a core.
  const othersCpuPct = Math.max(0, ((end.pinnedCoresBusyMs - start.pinnedCoresBusyMs - targetCpuMs) / wallMs) * 100 - loadCpuPct);
  const notes: string[] = [];
  if (end.sharedCores) {
    if (othersCpuPct > 15) notes.push(`other processes took ${othersCpuPct.toFixed(0)}% of a core on the pinned cores`);
  } else {
    if (othersTargetCpuPct > 15) notes.push(`other processes took ${othersTargetCpuPct.toFixed(0)}% of the target's core`);
    if (othersLoadCpuPct > 15) notes.push(`other processes took ${othersLoadCpuPct.toFixed(0)}% of the load's core`);
  }
  return { othersTargetCpuPct, othersLoadCpuPct, othersCpuPct, notes };
}

/**
 * CPU per operation of each named root of the target (e.g. per node, and Redis), keyed
 * `cpuUsPerOp:<name>`; roots sharing a name (the masters of a Redis Cluster) are summed.
 */
export function cpuPerOpByRoot(start: Snapshot, end: Snapshot, operations: number): Record<string, number> {
  const metrics: Record<string, number> = {};
  if (operations <= 0) return metrics;
  for (const root of end.roots) {
    if (root.name === undefined) continue;
    const before = start.roots.find((candidate) => candidate.pid === root.pid);
    if (before === undefined) continue;
    const key = `cpuUsPerOp:${root.name}`;
    metrics[key] = (metrics[key] ?? 0) + ((root.cpuMs - before.cpuMs) * 1000) / operations;
  }
  return metrics;
}

/** The warm-up of a closed-loop job: `warmupMs` of traffic with progress, after which every client must still be open. */
export async function warmUp(context: JobContext, warmupMs: number, clients: readonly BenchClient[]): Promise<void> {
  await runFor(warmupMs, () => false, (elapsed) => context.progress({ phase: "warm-up", done: elapsed / 1000, total: warmupMs / 1000, unit: "s" }));
  assertAllOpen(clients, "during warm-up");
}

/** What `measure` read around the measured window. */
export interface Measurement {
  readonly start: Snapshot;
  readonly end: Snapshot;
  readonly seconds: number;
  /** This load process's CPU over the window, in % of one core. */
  readonly loadCpuPct: number;
}

/**
 * The measured window of a job: a "start" checkpoint, `begin()`, then up to `durationMs` (or until
 * `done()`) with progress showing the rate of `count()` in `unit`, then `stop()`, this process's
 * CPU and an "end" checkpoint.
 */
export async function measure(
  context: JobContext,
  options: { phase: string; durationMs: number; done: () => boolean; count: () => number; unit: string; begin: () => void; stop: () => void },
): Promise<Measurement> {
  const start = await context.checkpoint("start");
  const load = cpuMeter();
  const t0 = performance.now();
  options.begin();
  let last = 0;
  let lastAt = t0;
  await runFor(options.durationMs, options.done, (elapsed) => {
    const now = performance.now();
    const count = options.count();
    context.progress({ phase: options.phase, done: elapsed / 1000, total: options.durationMs / 1000, rate: ((count - last) * 1000) / (now - lastAt), unit: options.unit });
    last = count;
    lastAt = now;
  });
  options.stop();
  const seconds = (performance.now() - t0) / 1000;
  const loadCpuPct = load();
  const end = await context.checkpoint("end");
  return { start, end, seconds, loadCpuPct };
}
