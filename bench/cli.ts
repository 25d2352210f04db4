import { join, relative, resolve } from "node:path";
import { parseArgs } from "node:util";
import { codeState, describeMachine, machineInfo } from "./core/machine.ts";
import { hasChrt, hasTaskset, killAll } from "./core/processes.ts";
import { formatProfile, summarizeProfile, type ProfileSummary } from "./core/profile.ts";
import { ProgressDisplay } from "./core/progress.ts";
import { compareCases, formatComparisons, formatTable, writeReports, type BenchReport } from "./core/report.ts";
import { runScenarios } from "./core/runner.ts";
import type { ScenarioOptions } from "./core/scenario.ts";
import { BENCH_SERVER_CONFIG, ROOT } from "./core/targets.ts";
import type { ClientKind } from "./load/clients.ts";
import type { Transport } from "./load/protocol.ts";
import { ON_DEMAND_SCENARIOS, SCENARIOS, scenariosNamed } from "./scenarios/index.ts";

const HELP = `Usage: npm run bench -- <scenario> [options]

Scenarios:
${SCENARIOS.map((scenario) => `  ${scenario.name.padEnd(10)} ${scenario.summary}`).join("\n")}
  all        every scenario above, in order
${ON_DEMAND_SCENARIOS.map((scenario) => `  ${scenario.name.padEnd(10)} ${scenario.summary} (not in all)`).join("\n")}

Each case runs the server and its baseline relay interleaved (A B, B A, A B ...) and reports medians
and the ratio server/baseline. The server is pinned to one core and the load process to another.

Options:
  --rounds N          rounds per case (default 3)
  --quick             smoke run: 1 round, small sizes, short windows
  --transport T       ws or sio (default both)
  --payload P         signal payload: sdp or ice (default both)
  --duration S        measurement window in seconds (signal, broadcast, match, nodes, dialects)
  --pairs N           signal, dialects: client pairs (default 100)
  --window N          signal, dialects: messages in flight per client (32); broadcast, nodes: broadcasts in flight (8)
  --peers N           connect: connections; broadcast, nodes: namespace size (1000); memory: peers; match: active peers;
                      hundredk: peers held (default 100000); dialects: random-chat users paired (2000)
  --queued N          match: waiting tickets (default 10000)
  --ns-size N         memory/match: peers per namespace
  --data-bytes N      broadcast, nodes: size of the broadcast data (default 1024)
  --workers N         cluster: workers in the "all workers" configuration (default: CPUs);
                      stress: workers behind the primary (default 2); hundredk: (default 6)
  --connections N     stress: connections to open (default 20000)
  --deadline S        stress: seconds each connection has to connect + register (+ upgrade) (default 10)
  --load-processes N  stress: load processes the clients are spread over (default 4); hundredk: (default 8)
  --adapter A         nodes: peer-server's Socket.IO Redis adapter, sharded (default) or classic
                      (the bare relay always runs the sharded one)
  --nodes N           nodes: nodes of each side (default 2; from 3, the nodes past the first two
                      hold idle peers that no signal or broadcast is for)
  --redis R           nodes: single (one redis-server, default) or cluster (a 3-master Redis Cluster)
  --client C          load clients: wire (default; minimal framing, cheapest) or library (ws, socket.io-client;
                      dialects: ws, as the originals' Node clients); without it, signal runs Socket.IO with both
  --no-baseline       measure the server only
  --profile           write V8 CPU profiles of every target (--cpu-prof) and print where each spent
                      its CPU during the measurement window (add --no-baseline for the server only)
  --target-cpus L     taskset CPU list for the server (default 0; cluster and stress: 0,1)
  --load-cpus L       taskset CPU list for the load process (default 1)
  --no-pin            do not pin processes with taskset
  --out DIR           where reports go (default bench/results)
  -h, --help          this text
`;

function positiveInt(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed <= 0) throw new Error(`--${name} must be a positive integer`);
  return parsed;
}

function oneOf<T extends string>(value: string | undefined, allowed: readonly T[], name: string): T[] {
  if (value === undefined) return [...allowed];
  if (!(allowed as readonly string[]).includes(value)) throw new Error(`--${name} must be one of ${allowed.join(", ")}`);
  return [value as T];
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      rounds: { type: "string" },
      quick: { type: "boolean", default: false },
      transport: { type: "string" },
      payload: { type: "string" },
      duration: { type: "string" },
      pairs: { type: "string" },
      window: { type: "string" },
      peers: { type: "string" },
      queued: { type: "string" },
      "ns-size": { type: "string" },
      workers: { type: "string" },
      connections: { type: "string" },
      deadline: { type: "string" },
      "load-processes": { type: "string" },
      adapter: { type: "string" },
      nodes: { type: "string" },
      redis: { type: "string" },
      "data-bytes": { type: "string" },
      "no-baseline": { type: "boolean", default: false },
      client: { type: "string" },
      profile: { type: "boolean", default: false },
      "target-cpus": { type: "string" },
      "load-cpus": { type: "string" },
      "no-pin": { type: "boolean", default: false },
      out: { type: "string", default: join(ROOT, "bench", "results") },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help || positionals.length === 0) {
    process.stdout.write(HELP);
    return values.help ? 0 : 2;
  }
  const scenarios = positionals.flatMap((name) => {
    const found = scenariosNamed(name);
    if (found === undefined) throw new Error(`unknown scenario "${name}"; one of ${[...SCENARIOS.map((s) => s.name), "all", ...ON_DEMAND_SCENARIOS.map((s) => s.name)].join(", ")}`);
    return found;
  });
  const duration = values.duration === undefined ? undefined : Number(values.duration);
  if (duration !== undefined && !(duration > 0)) throw new Error("--duration must be a positive number of seconds");
  const deadline = values.deadline === undefined ? undefined : Number(values.deadline);
  if (deadline !== undefined && !(deadline > 0)) throw new Error("--deadline must be a positive number of seconds");
  const nodes = positiveInt(values.nodes, "nodes");
  if (nodes !== undefined && nodes < 2) throw new Error("--nodes must be at least 2 (pairs and namespace members span nodes 0 and 1)");
  const options: ScenarioOptions = {
    quick: values.quick,
    transports: oneOf<Transport>(values.transport, ["ws", "sio"], "transport"),
    payloads: oneOf(values.payload, ["sdp", "ice"] as const, "payload"),
    durationMs: duration === undefined ? undefined : duration * 1000,
    peers: positiveInt(values.peers, "peers"),
    pairs: positiveInt(values.pairs, "pairs"),
    window: positiveInt(values.window, "window"),
    queued: positiveInt(values.queued, "queued"),
    dataBytes: positiveInt(values["data-bytes"], "data-bytes"),
    namespaceSize: positiveInt(values["ns-size"], "ns-size"),
    workers: positiveInt(values.workers, "workers"),
    connections: positiveInt(values.connections, "connections"),
    deadlineMs: deadline === undefined ? undefined : deadline * 1000,
    loadProcesses: positiveInt(values["load-processes"], "load-processes"),
    adapters: oneOf(values.adapter ?? "sharded", ["sharded", "classic"] as const, "adapter"),
    nodes,
    redis: oneOf(values.redis ?? "single", ["single", "cluster"] as const, "redis")[0] ?? "single",
    clientChosen: values.client !== undefined,
  };
  const client = oneOf<ClientKind>(values.client, ["wire", "library"], "client")[0] ?? "wire";
  const pin = !values["no-pin"] && hasTaskset();
  const cpusFromCommandLine = values["target-cpus"] !== undefined || values["load-cpus"] !== undefined;
  const targetCpus = pin ? (values["target-cpus"] ?? "0") : undefined;
  const loadCpus = pin ? (values["load-cpus"] ?? "1") : undefined;
  const startedAt = new Date().toISOString();
  const outDir = resolve(values.out);
  const profileDir = values.profile ? join(outDir, "profiles", startedAt.replace(/[-:.]/g, "")) : undefined;
  const rounds = values.quick && values.rounds === undefined ? 1 : positiveInt(values.rounds, "rounds");
  const machine = machineInfo();
  const codeAtStart = codeState(ROOT);
  const display = new ProgressDisplay();
  display.log(`machine: ${describeMachine(machine)}`);
  display.log(`code: ${codeAtStart.commit}${codeAtStart.modified.length > 0 ? ` + uncommitted changes to ${codeAtStart.modified.join(", ")}` : ""}`);
  display.log(
    pin
      ? `pinning: server on CPU ${targetCpus}, load on CPU ${loadCpus} (taskset)${cpusFromCommandLine ? "" : "; a scenario may choose its own (cluster, stress: server on 0,1)"}`
      : "pinning: off (no taskset, or --no-pin)",
  );
  display.log(
    hasChrt()
      ? "load scheduling: SCHED_BATCH (chrt) where the load shares cores with the server: a load process a write wakes does not preempt the server"
      : "load scheduling: default (no chrt)",
  );
  if (machine.loadAverage[0] !== undefined && machine.loadAverage[0] > 0.5) display.log(`note: the machine is busy (load average ${machine.loadAverage.join(" ")}); expect noise, compare ratios`);

  const results = await runScenarios(
    scenarios.map((scenario) => ({ scenario, cases: scenario.cases(options) })),
    { rounds, baselines: !values["no-baseline"], targetCpus, loadCpus, cpusFromCommandLine, profileDir, client },
    display,
  );
  display.clear();

  const profiles: ProfileSummary[] = [];
  for (const run of results.flatMap((result) => result.runs)) {
    const from = run.checkpoints["start"];
    const to = run.checkpoints["end"];
    const window = from !== undefined && to !== undefined ? { fromUs: from, toUs: to } : undefined;
    for (const file of run.profiles) profiles.push(summarizeProfile(file, window));
  }
  const report: BenchReport = {
    command: `npm run bench -- ${process.argv.slice(2).join(" ")}`.trim(),
    startedAt,
    finishedAt: new Date().toISOString(),
    machine: { ...machine, loadAverage: machineInfo().loadAverage },
    code: { atStart: codeAtStart, atEnd: codeState(ROOT) },
    pinning: { target: targetCpus ?? null, load: loadCpus ?? null },
    client,
    serverConfig: BENCH_SERVER_CONFIG,
    cases: results,
    comparisons: compareCases(results),
    profiles,
  };
  const name = positionals.join("+");
  const paths = writeReports(outDir, name, report);
  process.stdout.write(`\n${formatTable(results)}\n\n`);
  if (report.comparisons.length > 0) process.stdout.write(`${formatComparisons(report.comparisons)}\n\n`);
  for (const profile of profiles) process.stdout.write(`${formatProfile(profile)}\n\n`);
  process.stdout.write(`report: ${relative(process.cwd(), paths.json)}\nchart:  ${relative(process.cwd(), paths.svg)}\n`);
  const failed = results.some((result) => result.runs.some((run) => !run.ok));
  return failed ? 1 : 0;
}

process.once("SIGINT", () => {
  killAll();
  process.exit(130);
});
main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    killAll();
    console.error(error instanceof Error ? error.message : error);
    process.exit(2);
  },
);
