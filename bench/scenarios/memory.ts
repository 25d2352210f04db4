import { TRANSPORT_TITLE, type Scenario } from "../core/scenario.ts";
import { relayTarget, serverTarget } from "../core/targets.ts";

/** Idle memory per registered, joined peer. */
export const memoryScenario: Scenario = {
  name: "memory",
  summary: "idle RSS per registered + joined peer at 10,000 peers (namespaces of 100), both transports",
  cases: (options) =>
    options.transports.map((transport) => {
      const peers = options.peers ?? (options.quick ? 1_000 : 10_000);
      return {
        id: transport,
        title: `${TRANSPORT_TITLE[transport]}: ${peers.toLocaleString("en-US")} idle peers`,
        subject: serverTarget(),
        baselines: [relayTarget(transport === "ws" ? "bare-ws" : "bare-sio")],
        job: {
          kind: "hold",
          params: {
            transport,
            peers,
            namespaceSize: options.namespaceSize ?? 100,
            concurrency: 100,
            settleMs: options.quick ? 1_000 : 3_000,
            // One source address gives ~28,000 ephemeral ports towards one server port.
            sourceAddresses: Math.max(1, Math.ceil(peers / 20_000)),
          },
        },
        metrics: [
          {
            key: "kbPerPeer",
            label: "RSS per peer",
            unit: "KB",
            better: "lower",
            digits: 1,
            headline: true,
            target: transport === "ws" ? { atMost: 12, text: "<= 12 KB" } : { atMost: 20, text: "<= 20 KB" },
          },
          { key: "rssIdleMb", label: "RSS before", unit: "MB", better: "lower", digits: 1 },
          { key: "rssLoadedMb", label: "RSS with peers", unit: "MB", better: "lower", digits: 1 },
          { key: "setupPerSec", label: "connect+register+join", unit: "/s", better: "higher", digits: 0 },
        ],
        timeoutMs: 300_000,
      };
    }),
};
