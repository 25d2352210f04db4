import { availableParallelism } from "node:os";
import { SHARED_CORES_METRICS, TRANSPORT_TITLE, type Case, type MetricSpec, type Scenario } from "../core/scenario.ts";
import { serverTarget, type TargetSpec } from "../core/targets.ts";
import { WARMUP_PER_PROCESS } from "./connect.ts";
import { payloadTitle, signalParams } from "./signal.ts";

/**
 * One worker vs all workers: the same server, `PEER_WORKERS=1` (one process, no primary) against
 * `PEER_WORKERS=<CPUs>` (the workers accept connections, the primary places them), both given the same CPUs
 * ("0,1"); the load process runs on CPU 1, so on a 2-core machine it competes with the server and
 * the CPU per operation is the figure to read next to the rates. Ratio = all workers / one worker.
 * Pairs are placed as the primary balances the workers (new connections go to the accepting worker
 * unless it holds more than its share): the signal cases report how many
 * pairs ended up on two different workers, when the server runs its admin listener
 * (`BENCH_SERVER_OPTIONS='{"metrics_enabled":true}'`; the admin API's GET /admin/stats?detail=peers).
 */
const SERVER_CPUS = "0,1";
const LOAD_CPUS = "1";

/** Worker counts the connect case also runs, for the CPU per registration as the cluster grows. */
const WORKER_SWEEP = [4, 8];

const workersTarget = (workers: number): TargetSpec =>
  serverTarget({ id: `${workers}-workers`, workers, description: `peer-server, cluster.ts with PEER_WORKERS=${workers} (primary + ${workers} workers)` });

function targets(workers: number): { subject: TargetSpec; baseline: TargetSpec } {
  return {
    subject: workersTarget(workers),
    baseline: serverTarget({ id: "1-worker", workers: 1, description: "peer-server, cluster.ts with PEER_WORKERS=1 (one process)" }),
  };
}

/** The sweep's worker counts but the subject's own (none in a smoke run). */
const quickSweep = (quick: boolean, subjectWorkers: number): number[] => (quick ? [] : WORKER_SWEEP.filter((count) => count !== subjectWorkers));

export const clusterScenario: Scenario = {
  name: "cluster",
  summary: "1 worker vs all workers (server on CPUs 0,1 in both): connect+register rate (and its CPU with 4 and 8 workers) and signal throughput, SDP and ICE, both transports",
  cases: (options) => {
    const workers = options.workers ?? availableParallelism();
    const cases: Case[] = [];
    const ratioTarget = { ratioAtLeast: 1, text: ">= 1.00x one worker" };
    for (const transport of options.transports) {
      const { subject, baseline } = targets(workers);
      // The first baseline is the one the ratio and its target compare with; the others show how
      // the CPU per registration grows with the number of workers (on 2 cores, 8 workers still
      // measure the total CPU each registration costs).
      const sweep = quickSweep(options.quick, workers);
      cases.push({
        id: `connect/${transport}`,
        title: `${TRANSPORT_TITLE[transport]}: connect + register, ${workers} workers vs 1${sweep.length > 0 ? ` (and ${sweep.join(", ")})` : ""}`,
        subject,
        baselines: [baseline, ...sweep.map(workersTarget)],
        job: {
          kind: "connect",
          params: {
            transport,
            count: options.peers ?? (options.quick ? 300 : 4_000),
            // Every process of the largest cluster of the case warmed up as one process is (the kernel
            // spreads connections over the workers about evenly).
            warmup: options.quick ? 50 : WARMUP_PER_PROCESS * Math.max(workers, ...sweep),
            concurrency: 50,
            maxMs: 90_000,
          },
        },
        metrics: [
          { key: "perSec", label: "registrations/s", unit: "/s", better: "higher", digits: 0, headline: true, target: ratioTarget },
          { key: "p50Ms", label: "connect+register p50", unit: "ms", better: "lower", digits: 2 },
          { key: "p99Ms", label: "connect+register p99", unit: "ms", better: "lower", digits: 2 },
          { key: "serverCpuUsPerConn", label: "server CPU per connection", unit: "µs", better: "lower", digits: 0, chart: true },
          ...SHARED_CORES_METRICS,
        ],
        timeoutMs: 150_000,
        targetCpus: SERVER_CPUS,
        loadCpus: LOAD_CPUS,
      });
    }
    for (const transport of options.transports) {
      for (const payload of options.payloads) {
        const { subject, baseline } = targets(workers);
        const metrics: MetricSpec[] = [
          { key: "msgsPerSec", label: "signals/s", unit: "/s", better: "higher", digits: 0, headline: true, target: ratioTarget },
          { key: "p50Ms", label: "latency p50", unit: "ms", better: "lower", digits: 1 },
          { key: "p99Ms", label: "latency p99", unit: "ms", better: "lower", digits: 1 },
          { key: "serverCpuUsPerMsg", label: "server CPU per signal", unit: "µs", better: "lower", digits: 2, chart: true },
          { key: "serverCpuPct", label: "server CPU", unit: "%", better: "lower", digits: 0 },
          { key: "crossedPairs", label: "pairs across workers", unit: "", better: "lower", digits: 0 },
          { key: "crossedSignalPct", label: "share of signals on pairs across workers", unit: "%", better: "higher", digits: 0 },
          { key: "crossedP50Ms", label: "latency p50, pairs across workers", unit: "ms", better: "lower", digits: 1 },
          { key: "crossedP99Ms", label: "latency p99, pairs across workers", unit: "ms", better: "lower", digits: 1 },
          { key: "localP50Ms", label: "latency p50, pairs within a worker", unit: "ms", better: "lower", digits: 1 },
          { key: "localP99Ms", label: "latency p99, pairs within a worker", unit: "ms", better: "lower", digits: 1 },
          { key: "processesWithPeers", label: "processes holding peers", unit: "", better: "higher", digits: 0 },
          ...SHARED_CORES_METRICS,
        ];
        cases.push({
          id: `signal/${transport}/${payload}`,
          title: `${TRANSPORT_TITLE[transport]}: signal, ${payloadTitle(payload)}, ${workers} workers vs 1`,
          subject,
          baselines: [baseline],
          job: {
            kind: "signal",
            params: signalParams(options, transport, payload, { placement: true }),
          },
          metrics,
          timeoutMs: 120_000,
          targetCpus: SERVER_CPUS,
          loadCpus: LOAD_CPUS,
        });
      }
    }
    return cases;
  },
};
