import { getHeapStatistics, setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import type { Logger } from "../observability/logger.ts";

/** What the process did over one sampling period. */
export interface ReclaimSample {
  /** The share of one core the process used (1 = a whole core). */
  readonly cpuShare: number;
  /** The V8 heap's size (committed), bytes. */
  readonly heapBytes: number;
}

export interface BurstReclaimPolicy {
  /** A period at or below this share of a core is quiet: whatever burst came before it is over. */
  readonly quietShare: number;
  /** How much the heap must have grown within the window to be worth a collection. */
  readonly growthBytes: number;
  /** The window, in periods: growth spread over longer is not a burst. */
  readonly windowPeriods: number;
}

/** With 5 s periods: 64 MB of growth within two minutes. */
export const DEFAULT_BURST_RECLAIM: BurstReclaimPolicy = { quietShare: 0.1, growthBytes: 64 * 1024 * 1024, windowPeriods: 24 };

/**
 * Decides when a burst of work (a reconnect storm, a mass join) has ended and left a heap worth
 * collecting: the first quiet period in which the heap is `growthBytes` larger than the smallest
 * it was within the window (since the last collection). The heap's growth marks the burst, not the
 * CPU it took: a worker sharing its cores with several others is never busy by any fixed share.
 * The window keeps a heap that grows slowly with its peers (a few MB a minute) from being
 * collected, with its pause, again and again.
 */
export class BurstReclaim {
  /** The heap's sizes over the window, oldest first. */
  private recent: number[] = [];

  constructor(private readonly policy: BurstReclaimPolicy = DEFAULT_BURST_RECLAIM) {}

  /** True when the heap should be collected now; then tell `collected` the heap's size after it. */
  next(sample: ReclaimSample): boolean {
    this.recent.push(sample.heapBytes);
    if (this.recent.length > this.policy.windowPeriods) this.recent.shift();
    return sample.cpuShare <= this.policy.quietShare && sample.heapBytes - Math.min(...this.recent) >= this.policy.growthBytes;
  }

  /** The heap's size after a collection: growth counts from here. */
  collected(heapBytes: number): void {
    this.recent = [heapBytes];
  }
}

/** A full collection: the `gc` V8 exposes under --expose-gc. */
export type Collect = () => void;

/**
 * V8's `gc` function: the global one when the process runs with --expose-gc, else one made for a
 * new context once the flag is set (whoever starts the server need not pass it, and no global is
 * added); undefined if V8 refuses.
 */
export function exposedCollect(): Collect | undefined {
  const global = (globalThis as { gc?: unknown }).gc;
  if (typeof global === "function") return global as Collect;
  try {
    setFlagsFromString("--expose-gc");
    const made: unknown = runInNewContext("gc");
    return typeof made === "function" ? (made as Collect) : undefined;
  } catch {
    return undefined;
  }
}

/** How often the process looks at its CPU and heap. */
const RECLAIM_PERIOD_MS = 5_000;

/**
 * Gives the memory a burst of work left behind back to the system once the burst ends: one full
 * garbage collection, checked every 5 s. V8 sizes a heap by how fast it is filled, and
 * shrinks one that has gone idle only after a full collection: a cluster worker that had none
 * since a reconnect storm kept the room the storm made it take (at 100,000 peers on 6 workers,
 * about 450 MB of RSS each, flat for minutes), and one collection at the storm's end lets V8 give
 * it back over the next half minute (about 280 MB each). It costs one pause per burst (a few
 * hundred ms for a 300 MB heap). The cluster primary, which keeps the machine's state, runs it too;
 * one process, measured, shrinks by itself. Nothing runs when V8 gives no `gc`. Returns a function
 * that stops it.
 */
export function startBurstReclaim(logger: Logger, collect: Collect | undefined = exposedCollect()): () => void {
  if (collect === undefined) return () => undefined;
  const bursts = new BurstReclaim(DEFAULT_BURST_RECLAIM);
  let last = process.cpuUsage();
  const timer = setInterval(() => {
    const now = process.cpuUsage();
    const usedUs = now.user + now.system - last.user - last.system;
    const heapBytes = getHeapStatistics().total_heap_size;
    last = now;
    if (!bursts.next({ cpuShare: usedUs / 1_000 / RECLAIM_PERIOD_MS, heapBytes })) return;
    const started = performance.now();
    collect();
    const after = getHeapStatistics();
    bursts.collected(after.total_heap_size);
    logger.info({ pauseMs: Math.round(performance.now() - started), heapMb: mb(heapBytes), liveMb: mb(after.used_heap_size) }, "collected the heap after a burst of work");
    // The collection's own CPU is not the next period's work.
    last = process.cpuUsage();
  }, RECLAIM_PERIOD_MS);
  timer.unref();
  return () => clearInterval(timer);
}

const mb = (bytes: number): number => Math.round(bytes / 1024 / 1024);
