import { PROCESS_METRICS, TRANSPORT_TITLE, type Scenario } from "../core/scenario.ts";
import { relayTarget, serverTarget } from "../core/targets.ts";

/** Broadcast fan-out to a namespace of 1,000 peers. */
export const broadcastScenario: Scenario = {
  name: "broadcast",
  summary: "broadcast fan-out: one sender, 8 broadcasts in flight, to a namespace of 1,000 peers (1 KB data)",
  cases: (options) =>
    options.transports.map((transport) => ({
      id: transport,
      title: `${TRANSPORT_TITLE[transport]}: broadcast to ${options.peers ?? (options.quick ? 200 : 1_000)} peers`,
      subject: serverTarget(),
      baselines: [relayTarget(transport === "ws" ? "bare-ws" : "bare-sio")],
      job: {
        kind: "broadcast",
        params: {
          transport,
          peers: options.peers ?? (options.quick ? 200 : 1_000),
          window: options.window ?? 8,
          dataBytes: options.dataBytes ?? 1_024,
          warmupMs: options.quick ? 500 : 1_000,
          durationMs: options.durationMs ?? (options.quick ? 1_500 : 4_000),
          maxBroadcasts: 100_000,
        },
      },
      metrics: [
        { key: "deliveriesPerSec", label: "deliveries/s", unit: "/s", better: "higher", digits: 0, headline: true, target: { text: "serialized once" } },
        { key: "broadcastsPerSec", label: "broadcasts/s", unit: "/s", better: "higher", digits: 0 },
        { key: "p50Ms", label: "reach-all p50", unit: "ms", better: "lower", digits: 1 },
        { key: "p99Ms", label: "reach-all p99", unit: "ms", better: "lower", digits: 1 },
        { key: "serverCpuUsPerDelivery", label: "target CPU per delivery", unit: "µs", better: "lower", digits: 2, chart: true },
        ...PROCESS_METRICS,
      ],
      timeoutMs: 180_000,
    })),
};
