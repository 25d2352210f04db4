import { PROCESS_METRICS, TRANSPORT_TITLE, type Scenario } from "../core/scenario.ts";
import { serverTarget } from "../core/targets.ts";

/** Matchmaking with 10,000 queued tickets. The bare relays have no matchmaking: no baseline. */
export const matchScenario: Scenario = {
  name: "match",
  summary: "matchmaking: enqueue rate up to 10,000 waiting tickets (namespaces of 100), then groups of 2 formed/s with the queue full",
  cases: (options) =>
    options.transports.map((transport) => {
      const queued = options.queued ?? (options.quick ? 1_000 : 10_000);
      return {
        id: transport,
        title: `${TRANSPORT_TITLE[transport]}: match with ${queued.toLocaleString("en-US")} queued`,
        subject: serverTarget(),
        baselines: [],
        job: {
          kind: "match",
          params: {
            transport,
            queued,
            namespaceSize: options.namespaceSize ?? 100,
            active: options.peers ?? (options.quick ? 50 : 200),
            concurrency: 100,
            durationMs: options.durationMs ?? (options.quick ? 1_500 : 4_000),
            maxMatches: 5_000_000,
          },
        },
        metrics: [
          { key: "matchesPerSec", label: "groups formed/s", unit: "/s", better: "higher", digits: 0, headline: true },
          { key: "enqueuePerSec", label: "tickets queued/s", unit: "/s", better: "higher", digits: 0, headline: true },
          { key: "serverCpuUsPerMatch", label: "target CPU per group", unit: "µs", better: "lower", digits: 1, chart: true },
          ...PROCESS_METRICS,
        ],
        timeoutMs: 300_000,
      };
    }),
};
