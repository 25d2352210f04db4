import { PROCESS_METRICS, SHARED_CORES_METRICS, TRANSPORT_TITLE, type Case, type MetricSpec, type Scenario } from "../core/scenario.ts";
import { serverTarget } from "../core/targets.ts";
import type { Transport } from "../load/protocol.ts";

/**
 * Clients that drop: each connection registers and then ends with no closing handshake, as a
 * failing network ends it, so the server suspends its peer for resume_grace and expires it when the
 * grace runs out, while new connections keep coming. The grace is 2 s here, so a run spans several
 * graces and the expiries happen under load, as they do with steady churn in production. Against
 * the same server with resume off (resume_grace 0: a drop departs at once): the ratio is what
 * resume costs under churn. On one process per transport, and for raw /ws on 2 workers.
 */
const GRACE = "2s";

const metrics = (shared: readonly MetricSpec[]): MetricSpec[] => [
  { key: "perSec", label: "registrations/s", unit: "/s", better: "higher", digits: 0, headline: true },
  { key: "serverCpuUsPerConn", label: "target CPU per connection", unit: "µs", better: "lower", digits: 0, headline: true, chart: true },
  { key: "p50Ms", label: "connect+register p50", unit: "ms", better: "lower", digits: 2 },
  { key: "p99Ms", label: "connect+register p99", unit: "ms", better: "lower", digits: 2 },
  ...shared,
];

function churnCase(transport: Transport, workers: number, count: number, quick: boolean): Case {
  const where = workers === 1 ? "one process" : `${workers} workers`;
  const server = (grace: string, id: string): ReturnType<typeof serverTarget> =>
    serverTarget({ id, workers, config: { resume_grace: grace }, description: `peer-server (${where}), resume_grace ${grace}` });
  return {
    id: `${transport}/${workers}`,
    title: `${TRANSPORT_TITLE[transport]}: connect + register + drop, ${where}`,
    subject: server(GRACE, `resume-${GRACE}`),
    baselines: [server("0", "resume-off")],
    job: { kind: "connect", params: { transport, count, warmup: quick ? 50 : 200, concurrency: 50, maxMs: 60_000, ending: "drop" } },
    metrics: metrics(workers === 1 ? PROCESS_METRICS : SHARED_CORES_METRICS),
    timeoutMs: 120_000,
    ...(workers === 1 ? {} : { targetCpus: "0,1", loadCpus: "1" }),
  };
}

export const churnScenario: Scenario = {
  name: "churn",
  summary: `connect + register + drop (no closing handshake) with resume_grace ${GRACE} vs resume off: suspensions made and expired under load`,
  cases: (options) => {
    const count = options.peers ?? (options.quick ? 1_000 : 12_000);
    const cases = options.transports.map((transport) => churnCase(transport, 1, count, options.quick));
    if (options.transports.includes("ws")) cases.push(churnCase("ws", options.workers ?? 2, count, options.quick));
    return cases;
  },
};
