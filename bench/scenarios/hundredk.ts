import type { MetricSpec, Scenario } from "../core/scenario.ts";
import { serverTarget } from "../core/targets.ts";

/** Peers the one-process reference holds: one process may have 20,000 open files here, each peer takes one. */
const ONE_PROCESS_PEERS = 15_000;
/** What the one-process reference reports (the cluster's own figures: workers, checks, the overflow, make no sense there). */
const ONE_PROCESS_METRICS: ReadonlySet<string> = new Set(["peers", "failed", "serverRssMb", "serverRssQuietMb", "memorySettleSeconds", "rssIdleMb", "kbPerPeerGrowth", "setupPerSec", "serverCpuUsPerPeer", "loadCpuPct"]);

/**
 * 100,000 concurrent peers on one machine: the server's default max_peers, held by a cluster
 * (PEER_WORKERS=6: the workers accept the connections and the primary keeps their loads even, so
 * each worker holds about a sixth, well under the 20,000 open files a process may have here). The clients
 * come from 8 load processes and 8 loopback source addresses. Every peer registers and joins a
 * namespace of 100; every 10th is Socket.IO, the others raw /ws. With all of them held, it reads
 * /health and /stats, the RSS of the primary and of each worker once it has settled (V8 gives back
 * what the storm's garbage grew some seconds after the process turns idle), times a ping and a signal
 * between two of the peers, and checks that connection number 100,001 is refused (503, 1013).
 * Then the same mix in one process, as many peers as a process can hold, for the memory a peer
 * takes there.
 */
export const hundredkScenario: Scenario = {
  name: "hundredk",
  summary: "100,000 registered + joined peers at once (the default max_peers) on a 6-worker cluster, 8 load processes, 8 source addresses",
  defaultRounds: 1,
  cases: (options) => {
    const peers = options.peers ?? (options.quick ? 6_000 : 100_000);
    // The same mix in one process, as many peers as one process may hold here: its RSS growth per
    // peer is what the cluster's is held against (at most 1.5x, beside a fixed cost per process).
    const onePeers = Math.min(peers, options.quick ? 3_000 : ONE_PROCESS_PEERS);
    const workers = options.workers ?? 6;
    const processes = options.loadProcesses ?? (options.quick ? 2 : 8);
    // --transport ws: /ws only; --transport sio: Socket.IO only; default: every 10th peer Socket.IO.
    const sioEvery = options.transports.length === 2 ? 10 : options.transports[0] === "sio" ? 1 : 0;
    const mix = sioEvery === 10 ? "90% raw /ws, 10% Socket.IO" : sioEvery === 1 ? "Socket.IO" : "raw /ws";
    /** The crowd job over `count` peers; `full`: with the checks at full load and one connection more. */
    const crowd = (count: number, loadProcesses: number, full: boolean) => ({
      peers: count,
      namespaceSize: options.namespaceSize ?? 100,
      sioEvery,
      processes: loadProcesses,
      concurrency: 50,
      sourceAddresses: 8,
      maxMs: 600_000,
      settleMs: options.quick ? 1_000 : 5_000,
      checks: full ? 20 : 0,
      overflow: full,
    });
    const crowdMetrics: MetricSpec[] = [
      { key: "peers", label: "peers registered + joined, all held", unit: "", better: "higher", digits: 0, headline: true, target: { atLeast: peers, text: peers.toLocaleString("en-US") } },
      { key: "failed", label: "failed set-ups", unit: "", better: "lower", digits: 0, headline: true },
      { key: "healthPeers", label: "peers in GET /health", unit: "", better: "higher", digits: 0, headline: true },
      { key: "statsPeers", label: "total_peers in GET /stats", unit: "", better: "higher", digits: 0 },
      { key: "maxPeers", label: "max_peers (server default)", unit: "", better: "higher", digits: 0 },
      { key: "workerConnMin", label: "connections per worker, min", unit: "", better: "higher", digits: 0 },
      { key: "workerConnMax", label: "connections per worker, max", unit: "", better: "lower", digits: 0 },
      { key: "serverRssMb", label: "server RSS, primary + workers", unit: "MB", better: "lower", digits: 0, headline: true },
      { key: "kbPerPeer", label: "server RSS per peer (whole RSS)", unit: "KB", better: "lower", digits: 1, headline: true },
      { key: "kbPerPeerGrowth", label: "server RSS growth per peer", unit: "KB", better: "lower", digits: 1, headline: true },
      { key: "rssIdleMb", label: "server RSS before any peer", unit: "MB", better: "lower", digits: 0 },
      { key: "serverRssQuietMb", label: "server RSS 5 s after the set-up (before it settled)", unit: "MB", better: "lower", digits: 0 },
      { key: "memorySettleSeconds", label: "waited for the RSS to settle", unit: "s", better: "lower", digits: 0 },
      { key: "primaryRssMb", label: "primary RSS", unit: "MB", better: "lower", digits: 0 },
      { key: "workerRssMaxMb", label: "largest worker RSS", unit: "MB", better: "lower", digits: 0 },
      { key: "setupPerSec", label: "connect + register + join", unit: "/s", better: "higher", digits: 0, headline: true },
      { key: "setupSeconds", label: "set-up time", unit: "s", better: "lower", digits: 1 },
      { key: "serverCpuUsPerPeer", label: "server CPU per peer set up", unit: "µs", better: "lower", digits: 0 },
      { key: "joinedSeen", label: "peer_joined announcements received", unit: "", better: "higher", digits: 0 },
      { key: "joinedExpected", label: "peer_joined expected, at least (one per pair)", unit: "", better: "higher", digits: 0 },
      { key: "checksOk", label: "pings and signals answered at full load (of 20)", unit: "", better: "higher", digits: 0, headline: true },
      { key: "pairAcrossWorkers", label: "checked pair on different workers (1 = yes)", unit: "", better: "higher", digits: 0 },
      { key: "pingP50Ms", label: "ping -> pong p50", unit: "ms", better: "lower", digits: 2 },
      { key: "pingMaxMs", label: "ping -> pong max", unit: "ms", better: "lower", digits: 2 },
      { key: "signalP50Ms", label: "signal a -> b p50", unit: "ms", better: "lower", digits: 2 },
      { key: "signalMaxMs", label: "signal a -> b max", unit: "ms", better: "lower", digits: 2 },
      { key: "overflowError", label: "one connection more: error code", unit: "", better: "higher", digits: 0, headline: true },
      { key: "overflowClose", label: "one connection more: close code", unit: "", better: "higher", digits: 0 },
      { key: "peersAfterOverflow", label: "peers in GET /health after it", unit: "", better: "higher", digits: 0 },
      { key: "loadProcesses", label: "load processes", unit: "", better: "lower", digits: 0 },
      { key: "loadRssMb", label: "load processes' RSS", unit: "MB", better: "lower", digits: 0 },
      { key: "loadCpuPct", label: "load processes' CPU", unit: "%", better: "lower", digits: 0 },
      { key: "othersCpuPct", label: "others on the pinned cores", unit: "%", better: "lower", digits: 0 },
    ];
    return [
      {
        id: "crowd",
        title: `${peers.toLocaleString("en-US")} peers held at once (${mix}), ${workers} workers`,
        // The server's own defaults apart from the bench's rate limits: max_peers stays 100,000.
        subject: serverTarget({ id: `${workers}-workers`, workers, description: `peer-server, cluster.ts with PEER_WORKERS=${workers}, default max_peers` }),
        baselines: [],
        job: {
          kind: "crowd",
          params: crowd(peers, processes, true),
        },
        metrics: crowdMetrics,
        comparison: {
          metric: "kbPerPeerGrowth",
          against: "one-process",
          label: "server RSS growth per peer, cluster / one process",
          ratioAtMost: 1.5,
          text: "<= 1.50x (beside a fixed cost per process: the RSS before any peer)",
        },
        timeoutMs: 900_000,
        targetCpus: "0,1",
        loadCpus: "0,1",
      },
      {
        id: "one-process",
        title: `The same mix in one process: ${onePeers.toLocaleString("en-US")} peers (the memory reference)`,
        subject: serverTarget({ id: "1-process", workers: 1, description: "peer-server, cluster.ts with PEER_WORKERS=1 (one process), default max_peers" }),
        baselines: [],
        job: {
          kind: "crowd",
          params: crowd(onePeers, Math.min(processes, 4), false),
        },
        // The cluster's figures that one process has too, without the cluster's targets.
        metrics: crowdMetrics
          .filter((metric) => ONE_PROCESS_METRICS.has(metric.key))
          .map(({ target: _target, ...metric }) => ({ ...metric, label: metric.key === "serverRssMb" ? "server RSS" : metric.label, headline: true })),
        timeoutMs: 300_000,
        targetCpus: "0,1",
        loadCpus: "0,1",
      },
    ];
  },
};
