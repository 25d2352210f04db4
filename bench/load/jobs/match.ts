import { forEachBounded, join, register, type BenchClient } from "../clients.ts";
import { assertAllOpen, interference, loadNotes, measure, runId, settle, type JobContext } from "../context.ts";
import type { JobResult, MatchParams } from "../protocol.ts";
import { incomingPrefix } from "../wire.ts";

/**
 * Matchmaking with a full queue. `queued` peers each leave a ticket that can never match (unique
 * criteria), spread over namespaces of `namespaceSize` (a join is announced to every member, so
 * one namespace of 10,000 would cost 50 million announcements to set up). Then `active` peers in
 * the first namespace, next to its queued tickets, request matches of two on shared criteria,
 * again as soon as they are matched. Reports the enqueue rate while the queue fills and the rate
 * of groups formed while it is full.
 */
export async function runMatch(params: MatchParams, context: JobContext): Promise<JobResult> {
  const id = runId();
  const total = params.queued + params.active;
  const clients: BenchClient[] = [];
  const namespaceOf = (index: number): string => `match-${id}-${index < params.queued ? Math.floor(index / params.namespaceSize) : 0}`;
  let joinedSeen = 0;
  const joinedPrefix = incomingPrefix(params.transport, "peer_joined");
  let matchedSeen = 0;
  let measuring = false;
  let running = false;
  let errors = 0;
  let firstError = "";
  const onError = (body: { payload?: Record<string, unknown> }): void => {
    errors++;
    firstError ||= JSON.stringify(body.payload);
  };

  try {
    await forEachBounded(
      total,
      params.concurrency,
      performance.now() + 240_000,
      async (index) => {
        const client = await context.connect(params.transport, index);
        clients[index] = client;
        client.onMessage = (type, body) => {
          if (type === "peer_joined") joinedSeen++;
          else if (type === "error") onError(body);
        };
        if (client.textFrames) client.onText = (text) => text.startsWith(joinedPrefix) && ++joinedSeen > 0;
        await register(client, `bench-${id}-${index}`);
        await join(client, namespaceOf(index));
      },
      (done) => {
        if (done % 250 === 0 || done === total) context.progress({ phase: "joining", done, total });
      },
    );
    const members = new Map<string, number>();
    for (let index = 0; index < total; index++) members.set(namespaceOf(index), (members.get(namespaceOf(index)) ?? 0) + 1);
    let expected = 0;
    for (const count of members.values()) expected += (count * (count - 1)) / 2;
    context.progress({ phase: "settling" });
    const seen = await settle(() => joinedSeen, expected, 120_000);
    if (seen < expected) throw new Error(`only ${seen}/${expected} peer_joined announcements arrived`);

    // Fill the queue: every queued peer asks for a group of two on criteria nobody else has.
    const fillStart = performance.now();
    await forEachBounded(
      params.queued,
      params.concurrency,
      performance.now() + 120_000,
      async (index) => {
        const client = clients[index] as BenchClient;
        const reply = await client.request("match", { payload: { namespace: namespaceOf(index), group_size: 2, criteria: { ticket: `${id}-${index}` } } }, ["match"]);
        if (reply.payload?.["status"] !== "waiting") throw new Error(`queued ticket not waiting: ${JSON.stringify(reply)}`);
      },
      (done) => {
        if (done % 500 === 0 || done === params.queued) context.progress({ phase: "queueing", done, total: params.queued });
      },
    );
    const enqueuePerSec = (params.queued * 1000) / (performance.now() - fillStart);

    // Active peers: ask, get matched (as the requester's reply or as the waiting peer's event), ask again.
    const actives = clients.slice(params.queued);
    const namespace = namespaceOf(params.queued);
    const ask = (client: BenchClient): void => client.send("match", { payload: { namespace, group_size: 2, criteria: { mode: "duel", region: "eu" } } });
    for (const client of actives) {
      client.onText = undefined;
      client.onMessage = (type, body) => {
        if (type === "matched") {
          if (measuring) matchedSeen++;
          if (running) ask(client);
        } else if (type === "error") onError(body);
      };
    }
    running = true;
    for (const client of actives) ask(client);
    const { start, end, seconds, loadCpuPct } = await measure(context, {
      phase: "matching",
      durationMs: params.durationMs,
      done: () => matchedSeen / 2 >= params.maxMatches,
      count: () => matchedSeen / 2,
      unit: "matches/s",
      begin: () => (measuring = true),
      stop: () => {
        measuring = false;
        running = false;
      },
    });
    const groups = matchedSeen / 2;
    assertAllOpen(clients, "while matching");
    if (errors > 0) throw new Error(`${errors} error replies, first: ${firstError}`);
    if (groups === 0) throw new Error("no match was formed");
    const noise = interference(start, end, loadCpuPct);
    return {
      metrics: {
        matchesPerSec: groups / seconds,
        enqueuePerSec,
        serverCpuUsPerMatch: ((end.cpuMs - start.cpuMs) * 1000) / groups,
        loadCpuPct,
        othersTargetCpuPct: noise.othersTargetCpuPct,
        othersLoadCpuPct: noise.othersLoadCpuPct,
        queued: params.queued,
        matches: groups,
      },
      notes: [...loadNotes(loadCpuPct), ...noise.notes],
    };
  } finally {
    // As in hold.ts: the load process exits after its result, which closes every socket at once.
    running = false;
    context.progress({ phase: "done" });
  }
}
