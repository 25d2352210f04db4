import { PROCESS_METRICS, TRANSPORT_TITLE, type Case, type Scenario } from "../core/scenario.ts";
import { redisNodesTarget } from "../core/redis-nodes.ts";
import { signalParams } from "./signal.ts";

/**
 * 1, 2 and 3 nodes (single-process servers) through one private Redis, for each Socket.IO Redis
 * adapter. Every pair has one peer on node 0 and the other on node 1 (with 2 and 3 nodes: every
 * signal crosses nodes); with 3 nodes, node 2 holds as many peers as the others but no signal is
 * addressed to any of them, so its CPU per signal is what a node that is not the target pays for a
 * targeted signal. All nodes and Redis share the target's core (the load has its own): the rate is
 * what one core carries, and the CPU per signal of each process is the figure that scales.
 */
export const nodesScenario: Scenario = {
  name: "nodes",
  summary: "1, 2 and 3 nodes through one Redis (sharded and classic adapter): cross-node signal rate, latency, CPU per signal of each node and of Redis",
  cases: (options) => {
    const cases: Case[] = [];
    const pairs = options.pairs ?? 100;
    // One payload by default (SDP, the larger); --payload chooses.
    const payloads = options.payloadChosen ? options.payloads : (["sdp"] as const);
    for (const adapter of options.adapters) {
      for (const transport of options.transports) {
        for (const payload of payloads) {
          cases.push({
            id: `${adapter}/${transport}/${payload}`,
            title: `${TRANSPORT_TITLE[transport]}: cross-node signal, ${payload === "sdp" ? "SDP-sized" : "ICE-sized"}, PEER_REDIS_ADAPTER=${adapter}`,
            subject: redisNodesTarget({ nodes: 3, adapter }),
            baselines: [redisNodesTarget({ nodes: 1, adapter }), redisNodesTarget({ nodes: 2, adapter })],
            job: {
              kind: "signal",
              params: signalParams(options, transport, payload, { pairs, pairEndpoints: [0, 1], idle: { endpoints: [2], perEndpoint: pairs }, placement: true }),
            },
            metrics: [
              { key: "msgsPerSec", label: "signals/s", unit: "/s", better: "higher", digits: 0, headline: true },
              { key: "p50Ms", label: "latency p50", unit: "ms", better: "lower", digits: 1 },
              { key: "p99Ms", label: "latency p99", unit: "ms", better: "lower", digits: 1 },
              { key: "serverCpuUsPerMsg", label: "CPU per signal, all nodes + Redis", unit: "µs", better: "lower", digits: 2, chart: true },
              { key: "cpuUsPerOp:node0", label: "node 0 CPU per signal (sends, receives)", unit: "µs", better: "lower", digits: 2 },
              { key: "cpuUsPerOp:node1", label: "node 1 CPU per signal (sends, receives)", unit: "µs", better: "lower", digits: 2 },
              { key: "cpuUsPerOp:node2", label: "node 2 CPU per signal (never the target)", unit: "µs", better: "lower", digits: 2, chart: true },
              { key: "cpuUsPerOp:redis", label: "Redis CPU per signal", unit: "µs", better: "lower", digits: 2 },
              { key: "crossedPairs", label: "pairs across nodes", unit: "", better: "higher", digits: 0 },
              { key: "serverCpuPct", label: "target CPU (all processes)", unit: "%", better: "lower", digits: 0 },
              ...PROCESS_METRICS,
            ],
            timeoutMs: 150_000,
          });
        }
      }
    }
    return cases;
  },
};
