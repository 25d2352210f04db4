import type { ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { connect as connectTcp } from "node:net";
import { join as joinPath } from "node:path";
import type { Snapshot } from "../../core/proc.ts";
import { quantile } from "../../core/stats.ts";
import { stopProcess } from "../../core/processes.ts";
import { ROOT, type Endpoint } from "../../core/targets.ts";
import { messageIs, openFileLimit, reasonNotes, spawnLoadProcesses, waitFor } from "../children.ts";
import { interference, runId, sleep, type JobContext } from "../context.ts";
import { peerLocations } from "../placement.ts";
import type { CrowdParams, CrowdShardSummary, FromCrowdClient, JobResult, ToCrowdClient } from "../protocol.ts";

const CLIENT = joinPath(ROOT, "bench", "load", "crowd-client.ts");

function rssKbOf(pid: number): number {
  try {
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match ? Number(match[1]) : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

const is = messageIs<FromCrowdClient>();

/** How often the server's RSS is read while it settles, and for how long at most. */
const MEMORY_SETTLE_STEP_MS = 5_000;
const MEMORY_SETTLE_MAX_MS = 120_000;
/**
 * Readings in a row within 1% of each other that count as settled: 40 s. A worker collects its
 * heap once the storm is over, and V8 shrinks the heap only some 10 to 30 s after that.
 */
const MEMORY_SETTLED_READINGS = 9;

/**
 * The server's memory once it holds its peers idle: read every few seconds until the last few
 * readings agree within 1% (at most two minutes). A storm of set-ups grows each V8 heap to make
 * room for its garbage, and V8 gives that back after a full collection once the process is idle,
 * some seconds later; what stays is what the peers take. `trail`: every reading, in MB.
 */
async function settledMemory(context: JobContext, quietRssKb: number): Promise<{ snapshot: Snapshot; waitedMs: number; trail: number[] }> {
  const started = performance.now();
  const readings = [quietRssKb];
  for (;;) {
    await sleep(MEMORY_SETTLE_STEP_MS);
    const snapshot = await context.checkpoint("loaded");
    readings.push(snapshot.rssKb);
    const waitedMs = performance.now() - started;
    const recent = readings.slice(-MEMORY_SETTLED_READINGS);
    const settled = recent.length === MEMORY_SETTLED_READINGS && Math.max(...recent) <= Math.min(...recent) * 1.01;
    if (settled || waitedMs >= MEMORY_SETTLE_MAX_MS) return { snapshot, waitedMs, trail: readings.map((kb) => Math.round(kb / 1024)) };
    context.progress({ phase: `waiting for the server's memory to settle (${Math.round(snapshot.rssKb / 1024)} MB)` });
  }
}

interface WorkerEntry {
  readonly node_id: string;
  readonly pid: number;
  readonly connections: Record<string, number>;
}

async function getJson<T>(endpoint: Endpoint, path: string, timeoutMs = 10_000): Promise<T> {
  const response = await fetch(`http://${endpoint.host}:${endpoint.port}${path}`, { signal: AbortSignal.timeout(timeoutMs) });
  return (await response.json()) as T;
}

/**
 * One /ws connection more than the server admits: what does it say? Reads the raw bytes until
 * the server closes and returns the error code of its first message and the close frame's code.
 */
function overflowAttempt(endpoint: Endpoint, timeoutMs = 10_000): Promise<{ status: string; errorCode: number; closeCode: number }> {
  return new Promise((resolve) => {
    const socket = connectTcp({ host: endpoint.host, port: endpoint.port });
    const chunks: Buffer[] = [];
    const finish = (): void => {
      clearTimeout(timer);
      socket.destroy();
      const all = Buffer.concat(chunks);
      const headEnd = all.indexOf("\r\n\r\n");
      const status = all.subarray(0, Math.max(0, all.indexOf("\r\n"))).toString("latin1");
      let errorCode = Number.NaN;
      let closeCode = Number.NaN;
      // Server frames are unmasked: opcode, 7-bit length (or 126 + 16-bit), payload.
      for (let offset = headEnd < 0 ? all.length : headEnd + 4; offset + 2 <= all.length; ) {
        const opcode = (all[offset] as number) & 0x0f;
        let length = (all[offset + 1] as number) & 0x7f;
        let header = 2;
        if (length === 126) {
          length = all.readUInt16BE(offset + 2);
          header = 4;
        }
        const payload = all.subarray(offset + header, offset + header + length);
        if (opcode === 0x1 && Number.isNaN(errorCode)) errorCode = Number(/"code":(\d+)/.exec(payload.toString("utf8"))?.[1] ?? Number.NaN);
        if (opcode === 0x8 && payload.length >= 2) closeCode = payload.readUInt16BE(0);
        offset += header + length;
      }
      resolve({ status, errorCode, closeCode });
    };
    const timer = setTimeout(finish, timeoutMs);
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.once("close", finish);
    socket.once("error", () => undefined);
    socket.once("connect", () =>
      socket.write(
        `GET /ws HTTP/1.1\r\nHost: ${endpoint.host}:${endpoint.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      ),
    );
  });
}

/**
 * Crowd: sets up `peers` registered + joined peers (namespaces of `namespaceSize`) over
 * `processes` load processes and `sourceAddresses` loopback source addresses, holds them all,
 * then reads what the server says (/health, /stats per worker, RSS of the primary and each
 * worker), times pings and signals between two of the peers at full load, and tries one
 * connection more than `peers`.
 */
export async function runCrowd(params: CrowdParams, context: JobContext): Promise<JobResult> {
  const namespacesPerProcess = Math.ceil(params.peers / params.processes / params.namespaceSize);
  const share = namespacesPerProcess * params.namespaceSize;
  const limit = openFileLimit();
  if (limit !== undefined && share + 500 > limit) {
    throw new Error(`${share} peers per load process need more than ${limit} open files (ulimit -n); use more load processes (--load-processes)`);
  }
  const perAddress = Math.ceil(params.peers / params.sourceAddresses);
  if (perAddress > 27_000) throw new Error(`${perAddress} connections per source address exceed the ~28,000 ephemeral ports towards one server port; use more source addresses`);
  const id = runId();
  const endpoint = context.endpoint(0);
  const children: ChildProcess[] = [];
  const ranges: { from: number; to: number }[] = [];
  for (let from = 0; from < params.peers; from += share) ranges.push({ from, to: Math.min(params.peers, from + share) });
  const output: string[] = [];
  try {
    context.progress({ phase: "starting load processes", done: 0, total: ranges.length });
    spawnLoadProcesses(CLIENT, ranges.length, children, output);
    await Promise.all(children.map((child) => waitFor(child, is("ready"), 60_000, "ready", output)));
    await sleep(1_000); // let the freshly started target finish its start-up work
    const idle = await context.checkpoint("idle");

    const progress = children.map(() => ({ done: 0, failed: 0 }));
    let setUp = true;
    let lastDone = 0;
    let lastAt = performance.now();
    let rate = 0;
    children.forEach((child, shard) =>
      child.on("message", (message: FromCrowdClient) => {
        if (message.type !== "progress" || !setUp) return;
        progress[shard] = message;
        const done = progress.reduce((n, entry) => n + entry.done, 0);
        const failed = progress.reduce((n, entry) => n + entry.failed, 0);
        const now = performance.now();
        if (now - lastAt >= 1_000) {
          rate = ((done - lastDone) * 1000) / (now - lastAt);
          lastDone = done;
          lastAt = now;
        }
        context.progress({ phase: `connect + register + join${failed > 0 ? ` (failed ${failed})` : ""}`, done, total: params.peers, rate, unit: "peers/s" });
      }),
    );

    const t0 = performance.now();
    const opened = children.map((child) => waitFor(child, is("opened"), params.maxMs + 120_000, "the end of its set-up", output));
    children.forEach((child, shard) => {
      const range = ranges[shard] as { from: number; to: number };
      child.send({ type: "start", shard, from: range.from, to: range.to, params, endpoint, runId: id } satisfies ToCrowdClient);
    });
    const summaries: CrowdShardSummary[] = (await Promise.all(opened)).map((message) => message.summary);
    setUp = false;
    const setupSeconds = Math.max(...summaries.map((summary) => summary.setupMs)) / 1000;
    const wallMs = performance.now() - t0;

    context.progress({ phase: `all set up; quiet ${params.settleMs / 1000} s` });
    await sleep(params.settleMs);
    const quiet = await context.checkpoint("quiet");
    const settled = await settledMemory(context, quiet.rssKb);
    const loaded = settled.snapshot;

    // What the server says with everything open.
    context.progress({ phase: "reading /health and /stats" });
    const health = await getJson<{ peers?: number | null; max_peers?: number }>(endpoint, "/health");
    const stats = await getJson<{ total_peers?: number; namespaces?: Record<string, number>; connections?: Record<string, number>; workers?: WorkerEntry[] }>(endpoint, "/stats");
    const workers = stats.workers ?? [];
    const workerRssKb = workers.map((worker) => rssKbOf(worker.pid));
    const workersRssKb = workerRssKb.reduce((n, kb) => n + kb, 0);
    const workerConnections = workers.map((worker) => Object.values(worker.connections).reduce((n, count) => n + count, 0));

    const completed = summaries.reduce((n, summary) => n + summary.completed, 0);
    const failed = summaries.reduce((n, summary) => n + summary.failed, 0);
    const joinedSeen = summaries.reduce((n, summary) => n + summary.joinedSeen, 0);
    const joinedExpected = summaries.reduce((n, summary) => n + summary.joinedExpected, 0);

    // A ping and a signal between two of the peers at full load: peers of load process 0's first
    // namespace, preferably on different workers (and of different transports).
    context.progress({ phase: `pings and signals between two of the ${completed.toLocaleString("en-US")} peers` });
    const notes: string[] = [];
    notes.push(`server RSS from ${params.settleMs / 1000} s after the set-up, every ${MEMORY_SETTLE_STEP_MS / 1000} s: ${settled.trail.join(", ")} MB`);
    let pingMs: number[] = [];
    let signalMs: number[] = [];
    let pairAcross = Number.NaN;
    const candidates = summaries[0]?.firstNamespace ?? [];
    if (params.checks > 0 && candidates.length >= 2 && children[0] !== undefined) {
      const a = candidates[0] as (typeof candidates)[number];
      let where = new Map<string, string>();
      try {
        where = (await peerLocations(endpoint, 30_000)).byFingerprint;
      } catch (error) {
        notes.push(`where peers are is unknown: ${(error as Error).message}`);
      }
      const score = (candidate: (typeof candidates)[number]): number =>
        (where.get(candidate.fingerprint) !== where.get(a.fingerprint) ? 2 : 0) + (candidate.transport !== a.transport ? 1 : 0);
      const b = candidates.slice(1).reduce((best, candidate) => (score(candidate) > score(best) ? candidate : best), candidates[1] as (typeof candidates)[number]);
      const workerA = where.get(a.fingerprint);
      const workerB = where.get(b.fingerprint);
      pairAcross = workerA !== undefined && workerB !== undefined ? Number(workerA !== workerB) : Number.NaN;
      const checked = waitFor(children[0], is("checked"), 60_000 + params.checks * 25_000, "its checks", output);
      children[0].send({ type: "check", a: a.index, b: b.index, count: params.checks } satisfies ToCrowdClient);
      const result = await checked;
      pingMs = [...result.pingMs].sort((x, y) => x - y);
      signalMs = [...result.signalMs].sort((x, y) => x - y);
      notes.push(
        `checked pair: peer ${a.index} (${a.transport}, ${workerA ?? "?"}) -> peer ${b.index} (${b.transport}, ${workerB ?? "?"}): ` +
          `${pingMs.length}/${params.checks} pongs, ${signalMs.length}/${params.checks} signals delivered`,
      );
      for (const error of result.errors) notes.push(`check failed: ${error}`);
    }

    // One more than the server should admit.
    let overflow = { status: "", errorCode: Number.NaN, closeCode: Number.NaN };
    let peersAfter = Number.NaN;
    const maxPeers = health.max_peers ?? Number.NaN;
    if (params.overflow && completed < maxPeers) notes.push(`one connection more not tried: ${completed} peers are below max_peers ${maxPeers}`);
    if (params.overflow && completed >= maxPeers) {
      context.progress({ phase: `connection number ${(completed + 1).toLocaleString("en-US")}` });
      overflow = await overflowAttempt(endpoint);
      notes.push(`connection number ${(completed + 1).toLocaleString("en-US")} (raw /ws): "${overflow.status}", then error ${overflow.errorCode}, close ${overflow.closeCode}`);
      peersAfter = (await getJson<{ peers?: number | null }>(endpoint, "/health")).peers ?? Number.NaN;
    }

    const loadRssKb = summaries.reduce((n, summary) => n + summary.rssKb, 0);
    const loadCpuPct = (summaries.reduce((n, summary) => n + summary.cpuMs, 0) / wallMs) * 100;
    const noise = interference(idle, quiet, loadCpuPct);
    notes.push(...noise.notes);
    // One process lists itself as its one worker: it has no primary.
    const primaryRssMb = workers.length > 1 ? (loaded.rssKb - workersRssKb) / 1024 : Number.NaN;
    notes.push(
      `workers (node_id: connections, RSS): ${workers.map((worker, index) => `${worker.node_id}: ${workerConnections[index]}, ${((workerRssKb[index] ?? 0) / 1024).toFixed(0)} MB`).join("; ")}` +
        (workers.length > 1 ? `; primary ${primaryRssMb.toFixed(0)} MB` : ""),
    );
    notes.push(`/stats connections by transport: ${JSON.stringify(stats.connections ?? {})}; namespaces: ${Object.keys(stats.namespaces ?? {}).length}`);
    // One announcement per pair of namespace members at least; two peers joining at the same time
    // on different workers may each be told about the other, so more is normal.
    notes.push(`peer_joined announcements: ${joinedSeen} received, at least ${joinedExpected} expected (one per pair of namespace members)`);
    notes.push(...reasonNotes(summaries, 10));

    return {
      metrics: {
        peers: completed,
        failed,
        healthPeers: health.peers ?? Number.NaN,
        statsPeers: stats.total_peers ?? Number.NaN,
        maxPeers,
        workerConnMin: workerConnections.length > 0 ? Math.min(...workerConnections) : Number.NaN,
        workerConnMax: workerConnections.length > 0 ? Math.max(...workerConnections) : Number.NaN,
        serverRssMb: loaded.rssKb / 1024,
        serverRssQuietMb: quiet.rssKb / 1024,
        memorySettleSeconds: settled.waitedMs / 1000,
        rssIdleMb: idle.rssKb / 1024,
        primaryRssMb,
        workerRssMaxMb: Math.max(...workerRssKb) / 1024,
        kbPerPeer: loaded.rssKb / Math.max(1, completed),
        kbPerPeerGrowth: (loaded.rssKb - idle.rssKb) / Math.max(1, completed),
        setupPerSec: completed / setupSeconds,
        setupSeconds,
        serverCpuUsPerPeer: ((quiet.cpuMs - idle.cpuMs) * 1000) / Math.max(1, completed),
        joinedSeen,
        joinedExpected,
        pingP50Ms: quantile(pingMs, 0.5),
        pingMaxMs: pingMs.length > 0 ? (pingMs[pingMs.length - 1] as number) : Number.NaN,
        signalP50Ms: quantile(signalMs, 0.5),
        signalMaxMs: signalMs.length > 0 ? (signalMs[signalMs.length - 1] as number) : Number.NaN,
        checksOk: Math.min(pingMs.length, signalMs.length),
        pairAcrossWorkers: pairAcross,
        overflowError: overflow.errorCode,
        overflowClose: overflow.closeCode,
        peersAfterOverflow: peersAfter,
        loadProcesses: children.length,
        loadRssMb: loadRssKb / 1024,
        loadCpuPct,
        othersCpuPct: noise.othersCpuPct,
      },
      notes,
    };
  } finally {
    context.progress({ phase: "stopping load processes (the kernel closes their sockets)" });
    for (const child of children) if (child.connected) child.send({ type: "close" } satisfies ToCrowdClient);
    await Promise.all(children.map((child) => stopProcess(child, 5_000)));
  }
}
