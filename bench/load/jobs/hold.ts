import { openFileLimit } from "../children.ts";
import { forEachBounded, join, register, type BenchClient } from "../clients.ts";
import { assertAllOpen, runId, settle, sleep, type JobContext } from "../context.ts";
import type { HoldParams, JobResult } from "../protocol.ts";
import { incomingPrefix } from "../wire.ts";

/**
 * Idle memory: reads the target's RSS, connects `peers` clients that register and join a
 * namespace (`namespaceSize` per namespace), lets the target settle, reads RSS again. The figure is
 * the growth of whole-process RSS divided by the number of peers.
 */
export async function runHold(params: HoldParams, context: JobContext): Promise<JobResult> {
  const limit = openFileLimit();
  if (limit !== undefined && params.peers + 500 > limit) {
    // The target inherits the same limit, and each peer costs it one descriptor as well.
    throw new Error(`${params.peers.toLocaleString("en-US")} peers need more than ${limit} open files per process (ulimit -n); raise the limit (e.g. ulimit -n 210000 as root) to run this size`);
  }
  const id = runId();
  const clients: BenchClient[] = [];
  let joinedSeen = 0;
  const joinedPrefix = incomingPrefix(params.transport, "peer_joined");
  const onJoined = (type: string): void => {
    if (type === "peer_joined") joinedSeen++;
  };
  try {
    await sleep(1_000); // let the freshly started target finish its start-up work
    const idle = await context.checkpoint("idle");
    const t0 = performance.now();
    await forEachBounded(
      params.peers,
      params.concurrency,
      performance.now() + 240_000,
      async (index) => {
        const localAddress = params.sourceAddresses > 1 ? `127.0.0.${1 + (index % params.sourceAddresses)}` : undefined;
        const client = await context.connect(params.transport, index, localAddress);
        clients[index] = client;
        client.onMessage = onJoined;
        if (client.textFrames) client.onText = (text) => text.startsWith(joinedPrefix) && ++joinedSeen > 0;
        await register(client, `bench-${id}-${index}`);
        await join(client, `mem-${id}-${Math.floor(index / params.namespaceSize)}`);
      },
      (done) => {
        if (done % 250 === 0 || done === params.peers) context.progress({ phase: "connecting", done, total: params.peers });
      },
    );
    const setupSeconds = (performance.now() - t0) / 1000;
    let expected = 0;
    for (let first = 0; first < params.peers; first += params.namespaceSize) {
      const members = Math.min(params.namespaceSize, params.peers - first);
      expected += (members * (members - 1)) / 2;
    }
    context.progress({ phase: "settling" });
    const seen = await settle(() => joinedSeen, expected, 60_000);
    if (seen < expected) throw new Error(`only ${seen}/${expected} peer_joined announcements arrived`);
    await sleep(params.settleMs);
    assertAllOpen(clients, "while idle");
    const loaded = await context.checkpoint("loaded");
    return {
      metrics: {
        kbPerPeer: (loaded.rssKb - idle.rssKb) / params.peers,
        rssIdleMb: idle.rssKb / 1024,
        rssLoadedMb: loaded.rssKb / 1024,
        setupPerSec: params.peers / setupSeconds,
        peers: params.peers,
      },
      notes: [],
    };
  } finally {
    // No graceful closes: thousands of them cost longer than the measurement. The load process
    // exits right after sending its result and the kernel closes every socket at once.
    context.progress({ phase: "done" });
  }
}
