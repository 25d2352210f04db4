import { PROCESS_METRICS, TRANSPORT_TITLE, type MetricSpec, type Scenario, type ScenarioOptions } from "../core/scenario.ts";
import { relayTarget, serverTarget } from "../core/targets.ts";
import type { BroadcastParams, Transport } from "../load/protocol.ts";

/**
 * The broadcast job as the broadcast and nodes scenarios run it: a namespace of `--peers` members
 * (1,000; 200 with --quick), `--window` broadcasts in flight (8), `--data-bytes` of data (1,024),
 * the run's warm-up and duration; `extra` adds to it.
 */
export function broadcastParams(options: ScenarioOptions, transport: Transport, extra: Partial<BroadcastParams> = {}): BroadcastParams {
  return {
    transport,
    peers: options.peers ?? (options.quick ? 200 : 1_000),
    window: options.window ?? 8,
    dataBytes: options.dataBytes ?? 1_024,
    warmupMs: options.quick ? 500 : 1_000,
    durationMs: options.durationMs ?? (options.quick ? 1_500 : 4_000),
    maxBroadcasts: 100_000,
    ...extra,
  };
}

/** The broadcast job's rates and reach-all latency, first in every broadcast case. */
export const BROADCAST_RATE_METRICS: readonly MetricSpec[] = [
  { key: "deliveriesPerSec", label: "deliveries/s", unit: "/s", better: "higher", digits: 0, headline: true, target: { text: "serialized once" } },
  { key: "broadcastsPerSec", label: "broadcasts/s", unit: "/s", better: "higher", digits: 0 },
  { key: "p50Ms", label: "reach-all p50", unit: "ms", better: "lower", digits: 1 },
  { key: "p99Ms", label: "reach-all p99", unit: "ms", better: "lower", digits: 1 },
];

/** Broadcast fan-out to a namespace of 1,000 peers. */
export const broadcastScenario: Scenario = {
  name: "broadcast",
  summary: "broadcast fan-out: one sender, 8 broadcasts in flight, to a namespace of 1,000 peers (1 KB data)",
  cases: (options) =>
    options.transports.map((transport) => {
      const params = broadcastParams(options, transport);
      return {
        id: transport,
        title: `${TRANSPORT_TITLE[transport]}: broadcast to ${params.peers} peers`,
        subject: serverTarget(),
        baselines: [relayTarget(transport === "ws" ? "bare-ws" : "bare-sio")],
        job: { kind: "broadcast", params },
        metrics: [
          ...BROADCAST_RATE_METRICS,
          { key: "serverCpuUsPerDelivery", label: "target CPU per delivery", unit: "µs", better: "lower", digits: 2, chart: true },
          ...PROCESS_METRICS,
        ],
        timeoutMs: 180_000,
      };
    }),
};
