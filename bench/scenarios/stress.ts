import { SHARED_CORES_METRICS, type Scenario } from "../core/scenario.ts";
import { serverTarget } from "../core/targets.ts";

/**
 * Stress: 20,000 connections to a 2-worker cluster (PEER_WORKERS=2), a third each over raw
 * /ws, Socket.IO WebSocket-only and Socket.IO polling-first with upgrade, 200 being set up at a
 * time over 4 load processes. Each must connect, register (and upgrade) within 10 s; the figure
 * that matters is how many hung (no answer by the deadline): the issue wants zero.
 */
export const stressScenario: Scenario = {
  name: "stress",
  summary: "20,000 connections to a 2-worker cluster, mixed /ws, Socket.IO websocket and polling-first + upgrade; counts hung ones",
  defaultRounds: 1,
  cases: (options) => {
    const connections = options.connections ?? (options.quick ? 1_500 : 20_000);
    const workers = options.workers ?? 2;
    return [
      {
        id: "mixed",
        title: `${connections.toLocaleString("en-US")} connections, ${workers} workers`,
        subject: serverTarget({ id: `${workers}-workers`, workers, description: `peer-server, cluster.ts with PEER_WORKERS=${workers}` }),
        baselines: [],
        job: {
          kind: "stress",
          params: {
            connections,
            mix: ["ws", "sio", "polling"],
            concurrency: 200,
            deadlineMs: options.deadlineMs ?? 10_000,
            processes: options.loadProcesses ?? (options.quick ? 2 : 4),
            // 127.0.0.2-4 for the WebSocket clients, 127.0.0.1 for polling: ephemeral ports never run short.
            sourceAddresses: 3,
            maxMs: 300_000,
            holdMs: options.quick ? 500 : 2_000,
          },
        },
        metrics: [
          { key: "hung", label: "hung (no answer by the deadline)", unit: "", better: "lower", digits: 0, headline: true, target: { atMost: 0, text: "0" } },
          { key: "completed", label: "completed within the deadline", unit: "", better: "higher", digits: 0, headline: true },
          { key: "failed", label: "failed (error or close)", unit: "", better: "lower", digits: 0, headline: true },
          { key: "connections", label: "attempted", unit: "", better: "higher", digits: 0 },
          { key: "opened", label: "opened", unit: "", better: "higher", digits: 0 },
          { key: "registered", label: "registered", unit: "", better: "higher", digits: 0 },
          { key: "lateCompleted", label: "hung, then completed late", unit: "", better: "lower", digits: 0 },
          { key: "dropped", label: "closed by the server after completing", unit: "", better: "lower", digits: 0 },
          { key: "hung:ws", label: "hung, raw /ws", unit: "", better: "lower", digits: 0 },
          { key: "hung:sio", label: "hung, Socket.IO websocket", unit: "", better: "lower", digits: 0 },
          { key: "hung:polling", label: "hung, Socket.IO polling-first", unit: "", better: "lower", digits: 0 },
          { key: "perSec", label: "completed/s", unit: "/s", better: "higher", digits: 0, headline: true },
          { key: "p50Ms", label: "time to complete p50", unit: "ms", better: "lower", digits: 1 },
          { key: "p99Ms", label: "time to complete p99", unit: "ms", better: "lower", digits: 1 },
          { key: "maxMs", label: "time to complete max", unit: "ms", better: "lower", digits: 1 },
          { key: "serverCpuUsPerConn", label: "server CPU per connection", unit: "µs", better: "lower", digits: 0 },
          { key: "serverRssMb", label: "server RSS, all open", unit: "MB", better: "lower", digits: 0 },
          { key: "serverPeers", label: "peers in /health, all open", unit: "", better: "higher", digits: 0 },
          ...SHARED_CORES_METRICS,
        ],
        timeoutMs: 600_000,
        targetCpus: "0,1",
        loadCpus: "1",
      },
    ];
  },
};
