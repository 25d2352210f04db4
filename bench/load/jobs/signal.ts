import { Samples } from "../../core/stats.ts";
import { closeAll, forEachBounded, join, register, type BenchClient } from "../clients.ts";
import { assertAllOpen, cpuPerOpByRoot, interference, loadNotes, measure, runId, settle, sleep, warmUp, type JobContext } from "../context.ts";
import { connectIdlePeers } from "../idle-peers.ts";
import { payloadBytes, payloadObject, payloadTail } from "../payloads.ts";
import { pairPlacement } from "../placement.ts";
import type { JobResult, SignalParams } from "../protocol.ts";
import { eventHead, eventTail, incomingPrefix } from "../wire.ts";

/**
 * Where the pairs were placed, and the latency and share of the signals of pairs across two
 * processes vs pairs within one (a closed loop: a faster kind of pair carries more of the traffic).
 */
function placementMetrics(crossedPairs: number, processes: number, crossed: Samples, local: Samples): Record<string, number> {
  const split = (samples: Samples): { p50: number; p99: number } => (samples.count > 0 ? samples.percentiles() : { p50: Number.NaN, p99: Number.NaN });
  const across = split(crossed);
  const within = split(local);
  const total = crossed.count + local.count;
  return {
    crossedPairs,
    processesWithPeers: processes,
    crossedSignalPct: total > 0 ? (crossed.count / total) * 100 : Number.NaN,
    crossedP50Ms: across.p50,
    crossedP99Ms: across.p99,
    localP50Ms: within.p50,
    localP99Ms: within.p99,
  };
}

/**
 * Signal throughput and latency: `pairs` pairs of clients, each pair alone in its namespace.
 * Every client starts `window` signals towards its partner and sends one more for each signal it
 * receives, so about `window` messages per client stay in flight (a closed loop: the rate is what
 * the relay sustains). Latency is send-to-receive, measured on the load process's clock.
 * Optionally the pairs span given endpoints (nodes), idle peers sit on others, and the job reports
 * where the target placed each pair and the CPU per signal of each named target process.
 */
export async function runSignal(params: SignalParams, context: JobContext): Promise<JobResult> {
  const id = runId();
  const total = params.pairs * 2;
  const clients: BenchClient[] = [];
  const idle: BenchClient[] = [];
  const samples = new Samples();
  /** With placement: latency of pairs whose peers are in two processes, and of pairs within one. */
  const crossedSamples = new Samples(50_000);
  const localSamples = new Samples(50_000);
  let crossedPair: readonly boolean[] = [];
  let sending = false;
  let measuring = false;
  let received = 0;
  let measured = 0;
  let errors = 0;
  let firstError = "";

  const onSignal = (sentAt: number, pair: number): void => {
    received++;
    if (!measuring) return;
    measured++;
    const latency = performance.now() - sentAt;
    samples.add(latency);
    if (crossedPair.length > 0) (crossedPair[pair] === true ? crossedSamples : localSamples).add(latency);
  };
  const onOther = (type: string, body: { payload?: Record<string, unknown> }): void => {
    if (type !== "error") return;
    errors++;
    firstError ||= JSON.stringify(body.payload);
  };

  try {
    await forEachBounded(
      total,
      50,
      performance.now() + 60_000,
      async (index) => {
        const client = await context.connect(params.transport, params.pairEndpoints?.[index & 1] ?? index);
        clients[index] = client;
        await register(client, `bench-${id}-${index}`);
        await join(client, `sig-${id}-${index >> 1}`);
      },
      (done) => context.progress({ phase: "connecting", done, total }),
    );
    await connectIdlePeers(context, params.transport, params.idle, id, idle, onOther);
    const placed = params.placement === true ? await pairPlacement(context.endpoint(0), clients) : undefined;
    const placement = placed === undefined || "unknown" in placed ? undefined : placed;
    crossedPair = placement?.crossedByPair ?? [];

    const fires: (() => void)[] = [];
    for (let index = 0; index < total; index++) {
      const client = clients[index] as BenchClient;
      const partner = clients[index ^ 1] as BenchClient;
      let fire: () => void;
      if (client.textFrames) {
        // Pre-encoded frame around the timestamp; the receiver reads "t" without parsing the frame.
        const head = `${eventHead(client.transport, "signal")}"to":"${partner.fingerprint}","payload":{"t":`;
        const tail = `${payloadTail(params.payload)}${eventTail(client.transport)}`;
        const prefix = incomingPrefix(client.transport, "signal");
        fire = () => client.sendText(head + performance.now() + tail);
        client.onText = (text) => {
          if (!text.startsWith(prefix)) return false;
          const at = text.indexOf('"payload":{"t":');
          onSignal(Number.parseFloat(text.slice(at + 15, at + 40)), index >> 1);
          if (sending) fire();
          return true;
        };
      } else {
        const to = partner.fingerprint;
        const kind = params.payload;
        fire = () => client.send("signal", { to, payload: payloadObject(kind, performance.now()) });
        client.onMessage = (type, body) => {
          if (type !== "signal") return onOther(type, body);
          onSignal(Number(body.payload?.["t"]), index >> 1);
          if (sending) fire();
        };
      }
      if (client.textFrames) client.onMessage = onOther;
      fires.push(fire);
    }

    sending = true;
    for (const fire of fires) for (let k = 0; k < params.window; k++) fire();
    await warmUp(context, params.warmupMs, clients);

    const { start, end, seconds, loadCpuPct } = await measure(context, {
      phase: "measuring",
      durationMs: params.durationMs,
      done: () => measured >= params.maxMessages,
      count: () => measured,
      unit: "msg/s",
      begin: () => (measuring = true),
      stop: () => (measuring = false),
    });
    const count = measured;
    sending = false;
    assertAllOpen(clients, "while measuring");
    // Let the messages in flight land, so that closing does not race them.
    await settle(() => received, Number.POSITIVE_INFINITY, 3_000, 300);
    if (errors > 0) throw new Error(`${errors} error replies, first: ${firstError}`);
    if (count === 0) throw new Error("no signal was delivered");
    const { p50, p99 } = samples.percentiles();
    const serverCpuMs = end.cpuMs - start.cpuMs;
    const noise = interference(start, end, loadCpuPct);
    return {
      metrics: {
        msgsPerSec: count / seconds,
        p50Ms: p50,
        p99Ms: p99,
        serverCpuUsPerMsg: (serverCpuMs * 1000) / count,
        serverCpuPct: (serverCpuMs / (end.atMs - start.atMs)) * 100,
        loadCpuPct,
        othersTargetCpuPct: noise.othersTargetCpuPct,
        othersLoadCpuPct: noise.othersLoadCpuPct,
        othersCpuPct: noise.othersCpuPct,
        payloadBytes: payloadBytes(params.payload),
        messages: count,
        ...cpuPerOpByRoot(start, end, count),
        ...(placement === undefined ? {} : placementMetrics(placement.crossedPairs, placement.processes, crossedSamples, localSamples)),
      },
      notes: [...loadNotes(loadCpuPct), ...noise.notes, ...(placement?.notes ?? []), ...(placed !== undefined && "unknown" in placed ? [placed.unknown] : [])],
    };
  } finally {
    sending = false;
    await sleep(0);
    await closeAll([...clients, ...idle]);
  }
}
