import { bareDialectsTarget, peerpigeonTarget } from "../core/dialect-targets.ts";
import { redisNodesTarget } from "../core/redis-nodes.ts";
import { PROCESS_METRICS, type Case, type Scenario } from "../core/scenario.ts";
import { serverTarget } from "../core/targets.ts";
import type { DialectName } from "../load/protocol.ts";

const DIALECT_TITLE: Readonly<Record<DialectName, string>> = {
  pigeon: "PeerPigeon (/pigeon): offer",
  p2p: "p2p-go-app (/p2p/ws): SDP_OFFER",
  randomchat: "random chat (/randomchat/ws): offer",
};

/** Our server's offer rate should be at least this share of the bare relay's. */
const RATIO_TARGET = 0.85;

/**
 * The dialects (src/dialects/) under load. Per dialect, the offer relay as the signal scenario
 * measures /ws: 100 pairs set up the dialect's way, 32 SDP offers in flight per client, against
 * a bare `ws` relay of the same frames in the same run (bench/baselines/bare-dialects.ts); for
 * PeerPigeon also against PeerPigeon's own JavaScript server, installed from npm on first use.
 * Then random-chat pairing: 2,000 users send `available` at once, pairs formed per second on one
 * process, the bare first-come first-served pairer, and two nodes through a private Redis.
 */
export const dialectsScenario: Scenario = {
  name: "dialects",
  summary: "PeerPigeon, p2p and random-chat offer relay vs a bare relay of the same frames (and PeerPigeon's own server); random-chat pairs/s, 1 process vs 2 nodes",
  cases: (options) => {
    const cases: Case[] = [];
    for (const dialect of ["pigeon", "p2p", "randomchat"] as const) {
      cases.push({
        id: `${dialect}/offer`,
        title: `${DIALECT_TITLE[dialect]} relay, SDP (~1.4 KB)`,
        subject: serverTarget(),
        baselines: dialect === "pigeon" ? [bareDialectsTarget(), peerpigeonTarget()] : [bareDialectsTarget()],
        job: {
          kind: "dialect-signal",
          params: {
            dialect,
            pairs: options.pairs ?? 100,
            window: options.window ?? 32,
            warmupMs: options.quick ? 500 : 1_500,
            durationMs: options.durationMs ?? (options.quick ? 1_500 : 4_000),
            maxMessages: 5_000_000,
          },
        },
        metrics: [
          { key: "msgsPerSec", label: "offers/s", unit: "/s", better: "higher", digits: 0, headline: true, target: { ratioAtLeast: RATIO_TARGET, text: `>= ${RATIO_TARGET.toFixed(2)}x bare relay` } },
          { key: "p50Ms", label: "latency p50", unit: "ms", better: "lower", digits: 1 },
          { key: "p99Ms", label: "latency p99", unit: "ms", better: "lower", digits: 1 },
          { key: "serverCpuUsPerMsg", label: "target CPU per offer", unit: "µs", better: "lower", digits: 2, chart: true },
          { key: "serverCpuPct", label: "target CPU", unit: "%", better: "lower", digits: 0 },
          ...PROCESS_METRICS,
        ],
        // The first PeerPigeon run may install it from npm first.
        timeoutMs: dialect === "pigeon" ? 420_000 : 120_000,
      });
    }
    const users = options.peers ?? (options.quick ? 500 : 2_000);
    cases.push({
      id: "randomchat/pairing",
      title: `random chat: ${users.toLocaleString("en-US")} users send \`available\` at once, until all are paired`,
      subject: serverTarget(),
      baselines: [bareDialectsTarget(), redisNodesTarget({ nodes: 2, adapter: "sharded", id: "2-nodes" })],
      job: { kind: "dialect-pairing", params: { users, concurrency: 100, maxMs: 60_000 } },
      metrics: [
        { key: "pairsPerSec", label: "pairs formed/s", unit: "/s", better: "higher", digits: 0, headline: true },
        { key: "allPairedMs", label: "time until all paired", unit: "ms", better: "lower", digits: 0 },
        { key: "p50Ms", label: "time to `matched` p50", unit: "ms", better: "lower", digits: 0 },
        { key: "p99Ms", label: "time to `matched` p99", unit: "ms", better: "lower", digits: 0 },
        { key: "serverCpuUsPerPair", label: "target CPU per pair (all processes)", unit: "µs", better: "lower", digits: 0, chart: true },
        { key: "cpuUsPerOp:node0", label: "node 0 CPU per pair", unit: "µs", better: "lower", digits: 0 },
        { key: "cpuUsPerOp:node1", label: "node 1 CPU per pair", unit: "µs", better: "lower", digits: 0 },
        { key: "cpuUsPerOp:redis", label: "Redis CPU per pair", unit: "µs", better: "lower", digits: 0 },
        { key: "crossedPairs", label: "pairs across the two nodes", unit: "", better: "higher", digits: 0 },
        { key: "burstMs", label: "time to send every `available`", unit: "ms", better: "lower", digits: 0 },
        ...PROCESS_METRICS,
      ],
      timeoutMs: 240_000,
    });
    return cases;
  },
};
