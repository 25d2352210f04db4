import { Samples } from "../../core/stats.ts";
import { closeAll, forEachBounded, join, register, type BenchClient } from "../clients.ts";
import { assertAllOpen, cpuPerOpByRoot, interference, loadNotes, measure, runId, settle, warmUp, type JobContext } from "../context.ts";
import { connectIdlePeers } from "../idle-peers.ts";
import type { BroadcastParams, JobResult } from "../protocol.ts";
import { eventHead, eventTail, incomingPrefix } from "../wire.ts";

const RING = 4_096;

/**
 * Broadcast fan-out: `peers` clients in one namespace; `window` broadcasts stay in flight, the
 * next one sent each time a broadcast has reached every other member, by client 0 or, with
 * `senders`, by the first few members in turn. Reports deliveries per second, the time until a
 * broadcast has reached its last recipient, and the CPU per delivery of the target and of each of
 * its named processes (the nodes and Redis of a deployment on several nodes).
 */
export async function runBroadcast(params: BroadcastParams, context: JobContext): Promise<JobResult> {
  if (params.window > RING) throw new Error(`window must be at most ${RING}`);
  const id = runId();
  const namespace = `bc-${id}`;
  const clients: BenchClient[] = [];
  const idle: BenchClient[] = [];
  const recipients = params.peers - 1;
  const remaining = new Int32Array(RING);
  const sentAt = new Float64Array(RING);
  const samples = new Samples();
  const pad = "x".repeat(params.dataBytes);
  let joinedSeen = 0;
  let sending = false;
  let measuring = false;
  let nextSeq = 0;
  let deliveries = 0;
  let measuredDeliveries = 0;
  let completed = 0;
  let errors = 0;
  let firstError = "";
  let fire: () => void = () => undefined;

  const onDelivery = (seq: number): void => {
    deliveries++;
    if (measuring) measuredDeliveries++;
    const slot = seq % RING;
    const left = (remaining[slot] as number) - 1;
    remaining[slot] = left;
    if (left !== 0) return;
    completed++;
    if (measuring) samples.add(performance.now() - (sentAt[slot] as number));
    if (sending) fire();
  };
  const onOther = (type: string, body: { payload?: Record<string, unknown> }): void => {
    if (type === "peer_joined") joinedSeen++;
    else if (type === "error") {
      errors++;
      firstError ||= JSON.stringify(body.payload);
    }
  };

  try {
    await forEachBounded(
      params.peers,
      20,
      performance.now() + 120_000,
      async (index) => {
        const memberEndpoints = params.memberEndpoints;
        const client = await context.connect(params.transport, memberEndpoints === undefined ? index : (memberEndpoints[index % memberEndpoints.length] as number));
        clients[index] = client;
        client.onMessage = (type, body) => {
          if (type === "broadcast") onDelivery(Number((body.payload?.["data"] as { seq?: number } | undefined)?.seq));
          else onOther(type, body);
        };
        if (client.textFrames) {
          const broadcastPrefix = incomingPrefix(client.transport, "broadcast");
          const joinedPrefix = incomingPrefix(client.transport, "peer_joined");
          client.onText = (text) => {
            if (text.startsWith(broadcastPrefix)) {
              const at = text.indexOf('"seq":');
              onDelivery(Number.parseInt(text.slice(at + 6, at + 20), 10));
              return true;
            }
            if (text.startsWith(joinedPrefix)) {
              joinedSeen++;
              return true;
            }
            return false;
          };
        }
        await register(client, `bench-${id}-${index}`);
        await join(client, namespace);
      },
      (done) => context.progress({ phase: "joining", done, total: params.peers }),
    );
    // Each join is announced to the members already there; wait until those announcements are in.
    const expected = (params.peers * (params.peers - 1)) / 2;
    context.progress({ phase: "settling" });
    const seen = await settle(() => joinedSeen, expected, 60_000);
    if (seen < expected) throw new Error(`only ${seen}/${expected} peer_joined announcements arrived`);
    await connectIdlePeers(context, params.transport, params.idle, id, idle, onOther);

    /** Sends broadcast `seq` from `sender`. */
    const sendFrom = (sender: BenchClient): ((seq: number) => void) => {
      if (!sender.textFrames) return (seq) => sender.send("broadcast", { payload: { namespace, data: { seq, pad } } });
      const head = `${eventHead(sender.transport, "broadcast")}"payload":{"namespace":"${namespace}","data":{"seq":`;
      const tail = `,"pad":"${pad}"}}${eventTail(sender.transport)}`;
      return (seq) => sender.sendText(head + seq + tail);
    };
    const senders = clients.slice(0, Math.min(params.senders ?? 1, clients.length)).map(sendFrom);
    fire = () => {
      const seq = nextSeq++;
      remaining[seq % RING] = recipients;
      sentAt[seq % RING] = performance.now();
      (senders[seq % senders.length] as (seq: number) => void)(seq);
    };

    sending = true;
    for (let k = 0; k < params.window; k++) fire();
    await warmUp(context, params.warmupMs, clients);

    const { start, end, seconds, loadCpuPct } = await measure(context, {
      phase: "measuring",
      durationMs: params.durationMs,
      done: () => completed >= params.maxBroadcasts,
      count: () => measuredDeliveries,
      unit: "deliveries/s",
      begin: () => (measuring = true),
      stop: () => (measuring = false),
    });
    const count = measuredDeliveries;
    const broadcasts = samples.count;
    sending = false;
    assertAllOpen(clients, "while measuring");
    await settle(() => deliveries, Number.POSITIVE_INFINITY, 3_000, 300);
    if (errors > 0) throw new Error(`${errors} error replies, first: ${firstError}`);
    if (count === 0) throw new Error("no broadcast was delivered");
    const { p50, p99 } = samples.percentiles();
    const serverCpuMs = end.cpuMs - start.cpuMs;
    const noise = interference(start, end, loadCpuPct);
    return {
      metrics: {
        deliveriesPerSec: count / seconds,
        broadcastsPerSec: broadcasts / seconds,
        p50Ms: p50,
        p99Ms: p99,
        serverCpuUsPerDelivery: (serverCpuMs * 1000) / count,
        serverCpuPct: (serverCpuMs / (end.atMs - start.atMs)) * 100,
        loadCpuPct,
        othersTargetCpuPct: noise.othersTargetCpuPct,
        othersLoadCpuPct: noise.othersLoadCpuPct,
        deliveries: count,
        ...cpuPerOpByRoot(start, end, count),
      },
      notes: [...loadNotes(loadCpuPct), ...noise.notes],
    };
  } finally {
    sending = false;
    await closeAll([...clients, ...idle]);
  }
}
