import type { ChildProcess } from "node:child_process";
import { join as joinPath } from "node:path";
import { quantile } from "../../core/stats.ts";
import { stopProcess } from "../../core/processes.ts";
import { ROOT } from "../../core/targets.ts";
import { messageIs, openFileLimit, reasonNotes, spawnLoadProcesses, waitFor } from "../children.ts";
import { interference, runId, sleep, type JobContext } from "../context.ts";
import type { FromStressClient, HungConnection, JobResult, StressCounts, StressParams, StressShardSummary, StressTransport, ToStressClient } from "../protocol.ts";

const CLIENT = joinPath(ROOT, "bench", "load", "stress-client.ts");
const TRANSPORTS: readonly StressTransport[] = ["ws", "sio", "polling"];
const TITLE: Readonly<Record<StressTransport, string>> = { ws: "raw /ws", sio: "Socket.IO websocket-only", polling: "Socket.IO polling-first + upgrade" };

const is = messageIs<FromStressClient>();

function sum(summaries: readonly StressShardSummary[], transport: StressTransport): StressCounts {
  const total: StressCounts = { attempted: 0, opened: 0, registered: 0, completed: 0, failed: 0, hung: 0, lateCompleted: 0, lateFailed: 0, dropped: 0 };
  for (const summary of summaries) {
    const counts = summary.counts[transport];
    for (const key of Object.keys(total) as (keyof StressCounts)[]) total[key] += counts[key];
  }
  return total;
}

/** Peers the server reports in GET /health (the whole machine). */
async function serverPeers(context: JobContext): Promise<number> {
  const endpoint = context.endpoint(0);
  try {
    const response = await fetch(`http://${endpoint.host}:${endpoint.port}/health`, { signal: AbortSignal.timeout(5_000) });
    const body = (await response.json()) as { peers?: number | null };
    return typeof body.peers === "number" ? body.peers : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/**
 * Stress: opens `connections` connections through the target (a cluster primary), mixed over raw
 * /ws, Socket.IO WebSocket-only and Socket.IO polling-first with upgrade, `concurrency` at a time
 * spread over `processes` load processes (each can hold only `ulimit -n` sockets). Each must
 * connect, register (and upgrade) within `deadlineMs`; one that neither completes nor fails by
 * then is hung, and where it stopped is reported. All stay open until every process is done, then
 * are closed.
 */
export async function runStress(params: StressParams, context: JobContext): Promise<JobResult> {
  const share = Math.ceil(params.connections / params.processes);
  const limit = openFileLimit();
  if (limit !== undefined && share + 500 > limit) {
    throw new Error(`${share} connections per load process need more than ${limit} open files (ulimit -n); use more load processes (--load-processes)`);
  }
  const id = runId();
  const children: ChildProcess[] = [];
  const output: string[] = [];
  try {
    context.progress({ phase: "starting load processes", done: 0, total: params.processes });
    spawnLoadProcesses(CLIENT, params.processes, children, output);
    await Promise.all(children.map((child) => waitFor(child, is("ready"), 60_000, "ready", output)));

    const progress = children.map(() => ({ settled: 0, completed: 0, failed: 0, hung: 0 }));
    let opening = true;
    children.forEach((child, shard) =>
      child.on("message", (message: FromStressClient) => {
        if (message.type !== "progress" || !opening) return;
        progress[shard] = message;
        const total = (key: "settled" | "completed" | "failed" | "hung"): number => progress.reduce((n, entry) => n + entry[key], 0);
        context.progress({ phase: `opening (completed ${total("completed")}, failed ${total("failed")}, hung ${total("hung")})`, done: total("settled"), total: params.connections });
      }),
    );

    const start = await context.checkpoint("start");
    const t0 = performance.now();
    const opened = children.map((child) => waitFor(child, is("opened"), params.maxMs + params.deadlineMs + 30_000, "the end of its opening phase", output));
    children.forEach((child, shard) =>
      child.send({ type: "start", shard, shards: params.processes, params, endpoint: context.endpoint(0), client: context.client, runId: id } satisfies ToStressClient),
    );
    const openings = await Promise.all(opened);
    opening = false;
    const wallMs = performance.now() - t0;
    const end = await context.checkpoint("end");

    // Every connection is still open: the server must count every registered peer.
    context.progress({ phase: `holding all connections ${params.holdMs / 1000} s` });
    await sleep(params.holdMs);
    const peersHeld = await serverPeers(context);

    context.progress({ phase: "closing" });
    const closed = children.map((child) => waitFor(child, is("closed"), 60_000, "closed", output));
    for (const child of children) child.send({ type: "close" } satisfies ToStressClient);
    const summaries = (await Promise.all(closed)).map((message) => message.summary);

    const byTransport = Object.fromEntries(TRANSPORTS.map((transport) => [transport, sum(summaries, transport)])) as Record<StressTransport, StressCounts>;
    const all = sum(summaries, "ws");
    for (const transport of ["sio", "polling"] as const) for (const key of Object.keys(all) as (keyof StressCounts)[]) all[key] += byTransport[transport][key];
    const latencies = summaries.flatMap((summary) => summary.latencies).sort((a, b) => a - b);
    const openSeconds = Math.max(...openings.map((opening) => opening.openMs)) / 1000;
    const loadCpuPct = (summaries.reduce((n, summary) => n + summary.cpuMs, 0) / wallMs) * 100;
    const noise = interference(start, end, loadCpuPct);

    const hung: HungConnection[] = summaries.flatMap((summary) => summary.hung);
    const notes: string[] = [...noise.notes];
    for (const transport of TRANSPORTS) {
      const c = byTransport[transport];
      notes.push(
        `${TITLE[transport]}: ${c.attempted} attempted, ${c.opened} opened, ${c.registered} registered, ${c.completed} completed, ${c.failed} failed, ${c.hung} hung` +
          (c.hung > 0 ? ` (${c.lateCompleted} completed late, ${c.lateFailed} failed late)` : "") +
          (c.dropped > 0 ? `, ${c.dropped} dropped by the server after completing` : ""),
      );
    }
    notes.push(...reasonNotes(summaries, 15));
    for (const connection of hung.slice(0, 20)) {
      notes.push(
        `HUNG ${TITLE[connection.transport]} #${connection.index} (load process ${connection.loadProcess}) waiting at "${connection.step}"` +
          `${connection.details.length > 0 ? ` [${connection.details.join(", ")}]` : ""}: ${connection.outcome}`,
      );
    }
    if (hung.length > 20) notes.push(`... and ${hung.length - 20} more hung connections (see the JSON report's notes of each load process)`);
    const expectedPeers = all.registered + all.lateCompleted;
    if (Number.isFinite(peersHeld) && peersHeld !== expectedPeers - all.dropped) {
      notes.push(`GET /health counted ${peersHeld} peers while ${expectedPeers - all.dropped} registered connections were open`);
    }
    return {
      metrics: {
        connections: all.attempted,
        opened: all.opened,
        registered: all.registered,
        completed: all.completed,
        failed: all.failed,
        hung: all.hung,
        lateCompleted: all.lateCompleted,
        dropped: all.dropped,
        ...Object.fromEntries(TRANSPORTS.flatMap((transport) => [
          [`completed:${transport}`, byTransport[transport].completed],
          [`failed:${transport}`, byTransport[transport].failed],
          [`hung:${transport}`, byTransport[transport].hung],
        ])),
        perSec: all.completed / openSeconds,
        p50Ms: quantile(latencies, 0.5),
        p99Ms: quantile(latencies, 0.99),
        maxMs: latencies.length > 0 ? (latencies[latencies.length - 1] as number) : Number.NaN,
        serverCpuUsPerConn: ((end.cpuMs - start.cpuMs) * 1000) / Math.max(1, all.attempted),
        serverRssMb: end.rssKb / 1024,
        serverPeers: peersHeld,
        loadCpuPct,
        othersCpuPct: noise.othersCpuPct,
      },
      notes,
    };
  } finally {
    context.progress({ phase: "stopping load processes" });
    await Promise.all(children.map((child) => stopProcess(child, 5_000)));
  }
}
