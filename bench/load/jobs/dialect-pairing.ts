import { Samples } from "../../core/stats.ts";
import { cpuMeter, cpuPerOpByRoot, interference, loadNotes, runFor, type JobContext } from "../context.ts";
import { connectRandomChat, partnersOf, type Frame } from "../dialect-clients.ts";
import type { DialectPairingParams, JobResult } from "../protocol.ts";

const AVAILABLE = '{"type":"available"}';

/**
 * Random-chat pairing: `users` clients connect (round-robin over the target's endpoints, e.g. two
 * nodes) and read their clientId; then every one sends `available` in one burst, and the job
 * waits until each has its `matched`. Pairs per second run from the first `available` sent to the
 * last `matched` received; each user's time to pair runs from its own `available`. The pairing is
 * checked: every partnerId is a clientId of the run, and partners name each other.
 */
export async function runDialectPairing(params: DialectPairingParams, context: JobContext): Promise<JobResult> {
  if (params.users % 2 !== 0) throw new Error("users must be even: the last one would wait for a partner");
  context.progress({ phase: "connecting", done: 0, total: params.users });
  const { peers, clientIds } = await connectRandomChat(context, params.users, params.concurrency, (done) => context.progress({ phase: "connecting", done, total: params.users }));
  const partnerIds: (string | undefined)[] = new Array<string | undefined>(params.users);
  const sentAt: number[] = new Array<number>(params.users).fill(0);
  const times = new Samples(params.users);
  let matched = 0;
  let repeated = 0;
  let lastMatchedAt = 0;
  let errors = 0;
  let firstError = "";
  for (const [index, peer] of peers.entries()) {
    peer.client.onText = (text) => {
      const frame = JSON.parse(text) as Frame;
      if (frame["type"] === "matched") {
        const now = performance.now();
        if (partnerIds[index] !== undefined) {
          repeated++;
          return true;
        }
        partnerIds[index] = typeof frame["partnerId"] === "string" ? frame["partnerId"] : "";
        times.add(now - (sentAt[index] as number));
        lastMatchedAt = now;
        matched++;
      } else if (frame["type"] === "error") {
        errors++;
        firstError ||= text.slice(0, 300);
      }
      return true;
    };
  }

  const start = await context.checkpoint("start");
  const load = cpuMeter();
  const t0 = performance.now();
  for (const [index, peer] of peers.entries()) {
    sentAt[index] = performance.now();
    peer.client.sendText(AVAILABLE);
  }
  const sentAll = performance.now() - t0;
  await runFor(
    params.maxMs,
    () => matched >= params.users || errors > 0,
    (elapsed) => context.progress({ phase: "pairing", done: matched / 2, total: params.users / 2, rate: (matched * 500) / Math.max(elapsed, 1), unit: "pairs/s" }),
    10,
  );
  const loadCpuPct = load();
  const end = await context.checkpoint("end");
  if (errors > 0) throw new Error(`${errors} error frames, first: ${firstError}`);
  if (matched < params.users) throw new Error(`only ${matched} of ${params.users} users were matched within ${params.maxMs / 1000} s of the burst`);
  if (repeated > 0) throw new Error(`${repeated} users got a second \`matched\` without asking again`);
  const partner = partnersOf(clientIds, partnerIds);
  const endpoints = context.endpoints.length;
  let crossedPairs = 0;
  for (const [index, other] of partner.entries()) if (index < other && index % endpoints !== other % endpoints) crossedPairs++;
  const pairs = params.users / 2;
  const seconds = (lastMatchedAt - t0) / 1000;
  const { p50, p99 } = times.percentiles();
  const noise = interference(start, end, loadCpuPct);
  return {
    metrics: {
      pairsPerSec: pairs / seconds,
      allPairedMs: seconds * 1000,
      p50Ms: p50,
      p99Ms: p99,
      burstMs: sentAll,
      serverCpuUsPerPair: ((end.cpuMs - start.cpuMs) * 1000) / pairs,
      crossedPairs,
      loadCpuPct,
      othersTargetCpuPct: noise.othersTargetCpuPct,
      othersLoadCpuPct: noise.othersLoadCpuPct,
      users: params.users,
      ...cpuPerOpByRoot(start, end, pairs),
    },
    notes: [...loadNotes(loadCpuPct), ...noise.notes],
  };
}
