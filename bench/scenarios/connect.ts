import { PROCESS_METRICS, TRANSPORT_TITLE, type Scenario } from "../core/scenario.ts";
import { relayTarget, serverTarget } from "../core/targets.ts";

/**
 * Connections each server process takes before the counted ones: enough for V8 to have compiled
 * the registration path, so the figures are those of a server that has been running, not of its
 * first seconds (with a warm-up of 200 for a whole cluster, each of 8 workers counted its own
 * compilation: most of the CPU it measured).
 */
export const WARMUP_PER_PROCESS = 1_500;

/** Connection + registration rate, each transport against its bare relay. */
export const connectScenario: Scenario = {
  name: "connect",
  summary: "connection + registration rate (50 at a time: connect, register, close), both transports",
  cases: (options) =>
    options.transports.map((transport) => ({
      id: transport,
      title: `${TRANSPORT_TITLE[transport]}: connect + register`,
      subject: serverTarget(),
      baselines: [relayTarget(transport === "ws" ? "bare-ws" : "bare-sio")],
      job: {
        kind: "connect",
        params: { transport, count: options.peers ?? (options.quick ? 300 : 4_000), warmup: options.quick ? 50 : WARMUP_PER_PROCESS, concurrency: 50, maxMs: 30_000 },
      },
      metrics: [
        {
          key: "perSec",
          label: "registrations/s",
          unit: "/s",
          better: "higher",
          digits: 0,
          headline: true,
          target: transport === "ws" ? { ratioAtLeast: 0.85, text: ">= 0.85x bare relay" } : { ratioAtLeast: 0.8, text: ">= 0.80x bare relay" },
        },
        { key: "p50Ms", label: "connect+register p50", unit: "ms", better: "lower", digits: 2 },
        { key: "p99Ms", label: "connect+register p99", unit: "ms", better: "lower", digits: 2 },
        { key: "serverCpuUsPerConn", label: "target CPU per connection", unit: "µs", better: "lower", digits: 0, chart: true },
        ...PROCESS_METRICS,
      ],
      timeoutMs: 90_000,
    })),
};
