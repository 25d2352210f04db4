import { Samples } from "../../core/stats.ts";
import { closeAll, type BenchClient } from "../clients.ts";
import { assertAllOpen, interference, loadNotes, measure, runId, settle, sleep, warmUp, type JobContext } from "../context.ts";
import { SDP_BYTES, sentAt, setUpPairs, type DialectPeer, type Frame } from "../dialect-clients.ts";
import type { DialectSignalParams, JobResult } from "../protocol.ts";

/** Frame types that are errors in some dialect's vocabulary. */
const ERROR_TYPES = new Set(["error", "AUTH_ERROR"]);

/**
 * Offer relay of one dialect, a closed loop like the signal job: after the dialect's own set-up
 * (dialect-clients.ts), every client starts `window` SDP offers towards its partner and sends one
 * more for each offer it receives. The first offer each client receives is parsed and checked
 * against the dialect's specification (sender, addressing, SDP untouched, no stray fields); any
 * mismatch or error frame fails the run with what was wrong.
 */
export async function runDialectSignal(params: DialectSignalParams, context: JobContext): Promise<JobResult> {
  const id = runId();
  const total = params.pairs * 2;
  let peers: readonly DialectPeer[] = [];
  const samples = new Samples();
  let sending = false;
  let measuring = false;
  let received = 0;
  let measured = 0;
  let errors = 0;
  let firstError = "";
  const problems: string[] = [];

  const onOther = (frame: Frame): void => {
    if (typeof frame["type"] !== "string" || !ERROR_TYPES.has(frame["type"])) return;
    errors++;
    firstError ||= JSON.stringify(frame).slice(0, 300);
  };

  try {
    context.progress({ phase: "setting up pairs", done: 0, total });
    const pairs = await setUpPairs(params.dialect, context, id, params.pairs, (done) => context.progress({ phase: "setting up pairs", done, total }));
    peers = pairs.peers;
    const setupErrors = peers.filter((peer) => peer.errors > 0);
    if (setupErrors.length > 0) throw new Error(`${setupErrors.length} clients got error frames during set-up, first: ${setupErrors[0]?.firstError ?? ""}`);

    const fires: (() => void)[] = [];
    for (let index = 0; index < total; index++) {
      const client = (peers[index] as DialectPeer).client;
      const head = pairs.head[index] as string;
      const tail = pairs.tail[index] as string;
      let checked = false;
      const fire = (): void => client.sendText(head + performance.now() + tail);
      client.onText = (text) => {
        if (!text.startsWith(pairs.prefix) || !checked) {
          let frame: Frame;
          try {
            frame = JSON.parse(text) as Frame;
          } catch {
            onOther({ type: "error", invalidJson: text.slice(0, 200) });
            return true;
          }
          if (frame["type"] !== pairs.offerType) {
            onOther(frame);
            return true;
          }
          if (!checked) {
            checked = true;
            const problem = pairs.check(index, frame);
            if (problem !== undefined) problems.push(problem);
          }
        }
        received++;
        if (measuring) {
          measured++;
          samples.add(performance.now() - sentAt(text));
        }
        if (sending) fire();
        return true;
      };
      fires.push(fire);
    }

    const clients: BenchClient[] = peers.map((peer) => peer.client);
    sending = true;
    for (const fire of fires) for (let k = 0; k < params.window; k++) fire();
    await warmUp(context, params.warmupMs, clients);
    if (problems.length > 0) throw new Error(`${problems.length} clients received offers that differ from the specification, first: ${problems[0] ?? ""}`);

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
    await settle(() => received, Number.POSITIVE_INFINITY, 3_000, 300);
    if (errors > 0) throw new Error(`${errors} error frames, first: ${firstError}`);
    if (count === 0) throw new Error("no offer was delivered");
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
        sdpBytes: SDP_BYTES,
        messages: count,
      },
      notes: [...loadNotes(loadCpuPct), ...noise.notes],
    };
  } finally {
    sending = false;
    await sleep(0);
    await closeAll(peers.map((peer) => peer.client));
  }
}
