import { bareNodesTarget, redisNodesTarget, type RedisTopology } from "../core/redis-nodes.ts";
import { PROCESS_METRICS, TRANSPORT_TITLE, type Case, type MetricSpec, type Scenario } from "../core/scenario.ts";
import { BROADCAST_RATE_METRICS, broadcastParams } from "./broadcast.ts";
import { payloadTitle, signalParams } from "./signal.ts";

/**
 * CPU per operation of each node and of Redis (the job's `cpuUsPerOp:<name>` figures): nodes 0 and
 * 1 in the role `active`, the nodes past them in the role `idle`.
 */
function processCpuMetrics(nodes: number, redis: RedisTopology, operation: string, roles: { active: string; idle: string }): MetricSpec[] {
  return [
    ...Array.from({ length: nodes }, (_, index) => ({
      key: `cpuUsPerOp:node${index}`,
      label: `node ${index} CPU per ${operation} (${index < 2 ? roles.active : roles.idle})`,
      unit: "µs",
      better: "lower" as const,
      digits: 2,
    })),
    { key: "cpuUsPerOp:redis", label: `Redis CPU per ${operation}${redis === "cluster" ? " (all masters)" : ""}`, unit: "µs", better: "lower", digits: 2 },
    { key: "serverCpuPct", label: "target CPU (nodes + Redis)", unit: "%", better: "lower", digits: 0 },
  ];
}

/**
 * peer-server on 2 nodes (single-process servers) against the bare relay on 2 nodes of Socket.IO's
 * sharded Redis adapter, each through a private Redis of its own kind (one redis-server, or a
 * 3-master Redis Cluster with `--redis cluster`). Two loads cross nodes: signals, every pair with
 * one peer on node 0 and the other on node 1; and broadcasts, to a namespace whose members are
 * half on node 0 and half on node 1, sent in turn by a member of each. With `--nodes 3` (or more),
 * each further node holds idle peers, joined in namespaces of their own, that no message is for:
 * its CPU per signal or delivery is what a node pays for traffic that is not for it. All nodes and
 * Redis share the target's core (the load has its own): the rate is what one core carries, and the
 * CPU per operation, summed over nodes and Redis and for each, is the figure that carries over.
 */
export const nodesScenario: Scenario = {
  name: "nodes",
  summary: "2 nodes through Redis vs the bare sharded-adapter relay on 2 nodes: cross-node signals and broadcasts, rate, latency, CPU per operation of nodes + Redis",
  cases: (options) => {
    const cases: Case[] = [];
    const nodes = options.nodes ?? 2;
    const pairs = options.pairs ?? 100;
    const redis = options.redis;
    const onRedis = `${nodes} nodes on ${redis === "cluster" ? "a Redis Cluster" : "one Redis"}`;
    /** Nodes past the first two hold peers that no message is for. */
    const idleNodes = Array.from({ length: nodes - 2 }, (_, index) => index + 2);
    for (const adapter of options.adapters) {
      for (const transport of options.transports) {
        const subject = redisNodesTarget({ nodes, adapter, redis });
        const baselines = [bareNodesTarget({ nodes, transport, redis })];
        for (const payload of options.payloads) {
          cases.push({
            id: `${adapter}/${transport}/${payload}`,
            title: `${TRANSPORT_TITLE[transport]}: cross-node signal, ${payloadTitle(payload)}, ${onRedis}, PEER_REDIS_ADAPTER=${adapter}`,
            subject,
            baselines,
            job: {
              kind: "signal",
              params: signalParams(options, transport, payload, { pairs, pairEndpoints: [0, 1], ...(idleNodes.length > 0 ? { idle: { endpoints: idleNodes, perEndpoint: pairs } } : {}) }),
            },
            metrics: [
              { key: "msgsPerSec", label: "signals/s", unit: "/s", better: "higher", digits: 0, headline: true },
              { key: "p50Ms", label: "latency p50", unit: "ms", better: "lower", digits: 1 },
              { key: "p99Ms", label: "latency p99", unit: "ms", better: "lower", digits: 1 },
              { key: "serverCpuUsPerMsg", label: "CPU per signal, all nodes + Redis", unit: "µs", better: "lower", digits: 2, chart: true },
              ...processCpuMetrics(nodes, redis, "signal", { active: "sends, receives", idle: "never a target" }),
              ...PROCESS_METRICS,
            ],
            timeoutMs: 150_000,
          });
        }
        const members = broadcastParams(options, transport).peers;
        // An idle node holds as many peers as each node of the namespace.
        const broadcast = broadcastParams(options, transport, {
          memberEndpoints: [0, 1],
          senders: 2,
          ...(idleNodes.length > 0 ? { idle: { endpoints: idleNodes, perEndpoint: Math.ceil(members / 2) } } : {}),
        });
        cases.push({
          id: `${adapter}/${transport}/broadcast`,
          title: `${TRANSPORT_TITLE[transport]}: broadcast to ${broadcast.peers} peers, half on node 0 and half on node 1, a sender on each, ${onRedis}, PEER_REDIS_ADAPTER=${adapter}`,
          subject,
          baselines,
          job: { kind: "broadcast", params: broadcast },
          metrics: [
            ...BROADCAST_RATE_METRICS,
            { key: "serverCpuUsPerDelivery", label: "CPU per delivery, all nodes + Redis", unit: "µs", better: "lower", digits: 2, chart: true },
            ...processCpuMetrics(nodes, redis, "delivery", { active: "members, senders", idle: "no member" }),
            ...PROCESS_METRICS,
          ],
          timeoutMs: 180_000,
        });
      }
    }
    return cases;
  },
};
