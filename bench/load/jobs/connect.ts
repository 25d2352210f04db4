import { Samples } from "../../core/stats.ts";
import { register, type BenchClient } from "../clients.ts";
import { cpuMeter, interference, loadNotes, runId, sleep, type JobContext } from "../context.ts";
import type { ConnectParams, JobResult } from "../protocol.ts";
import type { Snapshot } from "../../core/proc.ts";

/**
 * Connection + registration rate: `concurrency` lanes each open a connection, register a fresh
 * key, wait for `registered`, close (or drop, `ending`) and start over. The first `warmup` are not
 * counted.
 */
export async function runConnect(params: ConnectParams, context: JobContext): Promise<JobResult> {
  const id = runId();
  const total = params.warmup + params.count;
  const samples = new Samples();
  const closing: Promise<string>[] = [];
  const deadline = performance.now() + params.maxMs;
  let next = 0;
  let completed = 0;
  let failure: Error | undefined;
  let start: Snapshot | undefined;
  let t0 = 0;
  let load: (() => number) | undefined;
  let startPending: Promise<void> | undefined;

  const lane = async (): Promise<void> => {
    while (next < total && failure === undefined && performance.now() < deadline) {
      const index = next++;
      const begin = performance.now();
      let client: BenchClient | undefined;
      try {
        client = await context.connect(params.transport, index);
        await register(client, `bench-${id}-${index}`);
      } catch (error) {
        failure ??= error as Error;
        client?.close();
        return;
      }
      const latency = performance.now() - begin;
      closing.push(client.closed);
      if (params.ending === "drop") client.drop();
      else client.close();
      completed++;
      if (completed === params.warmup) {
        // The measured window starts once the warm-up connections are done.
        t0 = performance.now();
        load = cpuMeter();
        startPending = context.checkpoint("start").then((snapshot) => {
          start = snapshot;
        });
      } else if (completed > params.warmup) samples.add(latency);
      if (completed % 100 === 0) context.progress({ phase: completed <= params.warmup ? "warm-up" : "connecting", done: completed, total });
    }
  };
  await Promise.all(Array.from({ length: params.concurrency }, lane));
  const t1 = performance.now();
  const loadCpuPct = load?.() ?? 0;
  const end = await context.checkpoint("end");
  await startPending;
  await Promise.race([Promise.all(closing), sleep(5_000)]);
  if (failure !== undefined) throw new Error(`connection ${completed + 1} failed: ${failure.message}`);
  const measured = completed - params.warmup;
  if (measured <= 0 || start === undefined) throw new Error(`only ${completed} connections completed within ${params.maxMs} ms`);
  const { p50, p99 } = samples.percentiles();
  const noise = interference(start, end, loadCpuPct);
  const notes = [...loadNotes(loadCpuPct), ...noise.notes];
  if (completed < total) notes.push(`time limit reached after ${completed}/${total} connections`);
  return {
    metrics: {
      perSec: (measured * 1000) / (t1 - t0),
      p50Ms: p50,
      p99Ms: p99,
      serverCpuUsPerConn: ((end.cpuMs - start.cpuMs) * 1000) / measured,
      loadCpuPct,
      othersTargetCpuPct: noise.othersTargetCpuPct,
      othersLoadCpuPct: noise.othersLoadCpuPct,
      othersCpuPct: noise.othersCpuPct,
      connections: measured,
    },
    notes,
  };
}
