import { PROCESS_METRICS, TRANSPORT_TITLE, type Case, type Scenario, type ScenarioOptions } from "../core/scenario.ts";
import { relayTarget, serverTarget } from "../core/targets.ts";
import type { ClientKind } from "../load/clients.ts";
import type { SignalParams, Transport } from "../load/protocol.ts";

export const payloadTitle = (payload: "sdp" | "ice"): string => (payload === "sdp" ? "SDP-sized (~1.5 KB)" : "ICE-sized (~200 B)");

/**
 * The signal job as the signal, cluster and nodes scenarios run it: `--pairs` pairs (100),
 * `--window` signals in flight per client (32), the run's warm-up and duration; `extra` adds to it.
 */
export function signalParams(options: ScenarioOptions, transport: Transport, payload: "sdp" | "ice", extra: Partial<SignalParams> = {}): SignalParams {
  return {
    transport,
    payload,
    pairs: options.pairs ?? 100,
    window: options.window ?? 32,
    warmupMs: options.quick ? 500 : 1_500,
    durationMs: options.durationMs ?? (options.quick ? 1_500 : 4_000),
    maxMessages: 5_000_000,
    ...extra,
  };
}

/** Signal throughput and latency: 100 pairs, ~32 in flight per client, SDP- and ICE-sized payloads. */
export const signalScenario: Scenario = {
  name: "signal",
  summary: "signal throughput and p50/p99 latency, 100 pairs, 32 in flight per client, SDP (~1.5 KB) and ICE (~200 B) payloads",
  cases: (options) => {
    const cases: Case[] = [];
    for (const transport of options.transports) {
      // Socket.IO is measured with the wire-level client and with socket.io-client, side by side:
      // what users run costs the server more than minimal framing does.
      const clients: readonly (ClientKind | undefined)[] = transport === "sio" && !options.clientChosen ? ["wire", "library"] : [undefined];
      for (const payload of options.payloads) {
        for (const client of clients) {
          const ratio = transport === "ws" ? 0.85 : 0.95;
          cases.push({
            id: client === "library" ? `${transport}/${payload}/library` : `${transport}/${payload}`,
            title: `${TRANSPORT_TITLE[transport]}${client === "library" ? " (socket.io-client)" : ""}: signal, ${payloadTitle(payload)}`,
            ...(client === undefined ? {} : { client }),
            subject: serverTarget(),
            baselines: [relayTarget(transport === "ws" ? "bare-ws" : "bare-sio")],
            job: {
              kind: "signal",
              params: signalParams(options, transport, payload),
            },
            metrics: [
              { key: "msgsPerSec", label: "signals/s", unit: "/s", better: "higher", digits: 0, headline: true, target: { ratioAtLeast: ratio, text: `>= ${ratio.toFixed(2)}x bare relay` } },
              { key: "p50Ms", label: "latency p50", unit: "ms", better: "lower", digits: 1 },
              { key: "p99Ms", label: "latency p99", unit: "ms", better: "lower", digits: 1 },
              { key: "serverCpuUsPerMsg", label: "target CPU per signal", unit: "µs", better: "lower", digits: 2, chart: true },
              { key: "serverCpuPct", label: "target CPU", unit: "%", better: "lower", digits: 0 },
              ...PROCESS_METRICS,
            ],
            timeoutMs: 120_000,
          });
        }
      }
    }
    return cases;
  },
};
