import { PROCESS_METRICS, TRANSPORT_TITLE, type Case, type Scenario } from "../core/scenario.ts";
import { serverTarget } from "../core/targets.ts";
import { payloadTitle, signalParams } from "./signal.ts";

/**
 * What the Prometheus metrics cost: the `signal` load against the server with `metrics_enabled`
 * (subject; admin listener on a free port, never scraped during the window) and without
 * (baseline), interleaved round by round in one run, so that a busy machine moves both sides
 * alike. Ratio = metrics on / metrics off; the budget is 3% of signal throughput.
 */
export const metricsScenario: Scenario = {
  name: "metrics",
  summary: "the signal load with metrics_enabled on vs off, interleaved: what the metrics cost",
  defaultRounds: 5,
  cases: (options) => {
    const cases: Case[] = [];
    for (const transport of options.transports) {
      for (const payload of options.payloads) {
        cases.push({
          id: `${transport}/${payload}`,
          title: `${TRANSPORT_TITLE[transport]}: signal, ${payloadTitle(payload)}, metrics on vs off`,
          subject: serverTarget({ id: "metrics-on", description: "peer-server with metrics_enabled", config: { metrics_enabled: true, metrics_port: 0 } }),
          baselines: [serverTarget({ id: "metrics-off", description: "peer-server without metrics", config: { metrics_enabled: false } })],
          job: { kind: "signal", params: signalParams(options, transport, payload) },
          metrics: [
            { key: "msgsPerSec", label: "signals/s", unit: "/s", better: "higher", digits: 0, headline: true, target: { ratioAtLeast: 0.97, text: ">= 0.97x metrics off" } },
            { key: "p50Ms", label: "latency p50", unit: "ms", better: "lower", digits: 1 },
            { key: "p99Ms", label: "latency p99", unit: "ms", better: "lower", digits: 1 },
            { key: "serverCpuUsPerMsg", label: "target CPU per signal", unit: "µs", better: "lower", digits: 2, chart: true, target: { ratioAtMost: 1.03, text: "<= 1.03x metrics off" } },
            { key: "serverCpuPct", label: "target CPU", unit: "%", better: "lower", digits: 0 },
            ...PROCESS_METRICS,
          ],
          timeoutMs: 120_000,
        });
      }
    }
    return cases;
  },
};
