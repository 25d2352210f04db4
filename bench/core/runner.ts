import type { ChildProcess } from "node:child_process";
import { mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";
import type { ClientKind } from "../load/clients.ts";
import type { FromWorker, JobResult, Metrics, ToWorker } from "../load/protocol.ts";
import { cpusOverlap, parseCpuList, snapshot } from "./proc.ts";
import { isMainThreadProfile } from "./profile.ts";
import { spawnPinned, stopProcess } from "./processes.ts";
import type { ProgressDisplay } from "./progress.ts";
import type { Case, CaseComparison, MetricSpec, Scenario } from "./scenario.ts";
import { median } from "./stats.ts";
import { ROOT, type RunningTarget, type TargetSpec, type TargetStop } from "./targets.ts";

const WORKER = join(ROOT, "bench", "load", "worker.ts");

export interface RunnerOptions {
  readonly rounds: number | undefined;
  readonly baselines: boolean;
  /** taskset CPU lists; undefined leaves processes unpinned. */
  readonly targetCpus: string | undefined;
  readonly loadCpus: string | undefined;
  /** True when the lists came from the command line: they then win over a case's own (Case.targetCpus). */
  readonly cpusFromCommandLine?: boolean;
  /** When set, every target is started with --cpu-prof writing under this folder. */
  readonly profileDir: string | undefined;
  /** Load client implementation. */
  readonly client: ClientKind;
}

export interface RunRecord {
  readonly target: string;
  readonly role: "subject" | "baseline";
  readonly round: number;
  readonly ok: boolean;
  readonly metrics: Metrics;
  readonly notes: readonly string[];
  readonly error?: string;
  readonly seconds: number;
  /** CPU profiles written by this run (with --profile). */
  readonly profiles: readonly string[];
  /** When each checkpoint was read (CLOCK_MONOTONIC µs), to cut profiles to the measurement window. */
  readonly checkpoints: Readonly<Record<string, number>>;
}

export interface MetricSummary {
  readonly spec: MetricSpec;
  /** Per target id, one value per round (NaN where a run failed). */
  readonly values: Readonly<Record<string, number[]>>;
  readonly medians: Readonly<Record<string, number>>;
  /** Subject median / first baseline median. */
  readonly ratio: number | undefined;
  /** Subject median / each baseline's median, by baseline id. */
  readonly ratios: Readonly<Record<string, number | undefined>>;
  /** Subject / baseline of the same round. */
  readonly roundRatios: readonly number[];
  readonly verdict: "pass" | "fail" | "n/a";
}

export interface CaseResult {
  readonly scenario: string;
  readonly id: string;
  readonly title: string;
  readonly subject: { readonly id: string; readonly description: string };
  readonly baselines: readonly { readonly id: string; readonly description: string }[];
  readonly job: Case["job"];
  readonly rounds: number;
  /** Where this case's processes ran (taskset lists; null when unpinned). */
  readonly pinning: { readonly target: string | null; readonly load: string | null };
  readonly runs: readonly RunRecord[];
  readonly metrics: readonly MetricSummary[];
  readonly comparison?: CaseComparison;
}

/** The taskset lists a case runs with: the case's own unless the command line gave some; none when pinning is off. */
export function casePinning(testCase: Case, options: Pick<RunnerOptions, "targetCpus" | "loadCpus" | "cpusFromCommandLine">): { target: string | undefined; load: string | undefined } {
  if (options.targetCpus === undefined || options.loadCpus === undefined || options.cpusFromCommandLine === true) return { target: options.targetCpus, load: options.loadCpus };
  return { target: testCase.targetCpus ?? options.targetCpus, load: testCase.loadCpus ?? options.loadCpus };
}

/**
 * Runs every case of the scenarios: per case, rounds of the subject and each baseline, the order
 * reversed every other round (A B, B A, A B ...): the first run of a pair tends to gain a few
 * percent, and alternating spreads that over both sides.
 */
export async function runScenarios(scenarios: readonly { scenario: Scenario; cases: readonly Case[] }[], options: RunnerOptions, display: ProgressDisplay): Promise<CaseResult[]> {
  const plan = scenarios.map(({ scenario, cases }) => ({ scenario, cases, rounds: options.rounds ?? scenario.defaultRounds ?? 3 }));
  const totalRuns = plan.reduce((sum, { cases, rounds }) => sum + cases.reduce((n, c) => n + rounds * (1 + (options.baselines ? c.baselines.length : 0)), 0), 0);
  let runNumber = 0;
  const results: CaseResult[] = [];
  for (const { scenario, cases, rounds } of plan) {
    for (const testCase of cases) {
      const targets: { spec: TargetSpec; role: "subject" | "baseline" }[] = [
        { spec: testCase.subject, role: "subject" },
        ...(options.baselines ? testCase.baselines.map((spec) => ({ spec, role: "baseline" as const })) : []),
      ];
      const runs: RunRecord[] = [];
      for (let round = 1; round <= rounds; round++) {
        for (const { spec, role } of round % 2 === 1 ? targets : [...targets].reverse()) {
          runNumber++;
          display.startRun(`[${runNumber}/${totalRuns}] ${scenario.name} ${testCase.id} round ${round}/${rounds} ${spec.id}`);
          const profileDir = options.profileDir === undefined ? undefined : join(options.profileDir, `${scenario.name}-${testCase.id.replace(/\W+/g, "-")}-r${round}-${spec.id}`);
          const record = await runOnce(testCase, spec, role, round, options, profileDir, display);
          runs.push(record);
          display.clear();
          display.log(describeRun(`[${runNumber}/${totalRuns}] ${scenario.name} ${testCase.id} round ${round} ${spec.id}`, testCase, record));
        }
      }
      results.push(summarize(scenario.name, testCase, rounds, runs, options));
    }
  }
  return results;
}

async function runOnce(
  testCase: Case,
  spec: TargetSpec,
  role: "subject" | "baseline",
  round: number,
  options: RunnerOptions,
  profileDir: string | undefined,
  display: ProgressDisplay,
): Promise<RunRecord> {
  const began = performance.now();
  let target: RunningTarget | undefined;
  let worker: ChildProcess | undefined;
  const workerOutput: string[] = [];
  const base = { target: spec.id, role, round };
  let record: Omit<RunRecord, "profiles" | "checkpoints">;
  const checkpoints: Record<string, number> = {};
  try {
    if (profileDir !== undefined) mkdirSync(profileDir, { recursive: true });
    const pinning = casePinning(testCase, options);
    target = await spec.start({ cpus: pinning.target, profileDir });
    const running = target;
    const targetCpus = parseCpuList(pinning.target);
    const loadCpus = parseCpuList(pinning.load);
    // SCHED_BATCH only where the load shares cores with the server (or runs unpinned): there its
    // wake-ups would preempt the server; on a core of its own nothing changes for the server.
    const sharesCores = targetCpus.length === 0 || loadCpus.length === 0 || cpusOverlap(targetCpus, loadCpus);
    worker = spawnPinned(pinning.load, process.execPath, ["--import", "tsx", WORKER], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe", "ipc"] }, sharesCores);
    const child = worker;
    const keep = (chunk: Buffer): void => {
      workerOutput.push(...chunk.toString().split("\n").filter(Boolean));
      if (workerOutput.length > 50) workerOutput.splice(0, workerOutput.length - 50);
    };
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    const result = await new Promise<JobResult>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`run timed out after ${testCase.timeoutMs / 1000} s`)), testCase.timeoutMs);
      const fail = (error: Error): void => {
        clearTimeout(timer);
        reject(error);
      };
      child.on("message", (message: FromWorker) => {
        switch (message.type) {
          case "progress":
            display.update(message.update);
            break;
          case "checkpoint": {
            const reading = snapshot(running.pids, performance.now(), targetCpus, loadCpus, running.names);
            checkpoints[message.name] = reading.monotonicUs;
            child.send({ type: "snapshot", id: message.id, snapshot: reading } satisfies ToWorker);
            break;
          }
          case "result":
            clearTimeout(timer);
            resolve(message.result);
            break;
          case "failed":
            fail(new Error(message.message));
            break;
        }
      });
      child.once("exit", (code, signal) => fail(new Error(`load process exited (${code ?? signal}) without a result\n${workerOutput.join("\n")}`)));
      void running.died.then((message) => fail(new Error(message)));
      child.send({ type: "run", job: testCase.job, endpoints: running.endpoints, client: testCase.client ?? options.client } satisfies ToWorker);
    });
    record = { ...base, ok: true, metrics: result.metrics, notes: result.notes, seconds: (performance.now() - began) / 1000 };
  } catch (error) {
    record = { ...base, ok: false, metrics: {}, notes: [], error: (error as Error).message, seconds: (performance.now() - began) / 1000 };
  }
  if (worker !== undefined) await stopProcess(worker, 5_000);
  display.update({ phase: "stopping target" });
  if (target !== undefined) record = withStop(record, await target.stop().then(stopped, (error: unknown) => ({ error: (error as Error).message })));
  // A profile is written when its process exits, so it exists only now.
  return { ...record, checkpoints, profiles: profileDir === undefined ? [] : profilesIn(profileDir) };
}

/** A target's stop as the run reports it: its shutdown time, or why it failed. */
type StopOutcome = { note?: string; error?: string };

function stopped(stop: TargetStop | void): StopOutcome {
  if (stop === undefined) return {};
  const codes = stop.exitCodes.map((code) => String(code ?? "signal")).join(", ");
  return { note: `shutdown ${(stop.ms / 1000).toFixed(2)} s (exit ${codes})` };
}

/**
 * The run with its target's stop: the shutdown time as a note, or, when a process of the target
 * had to be killed or outlived the kill, the run failed with that message.
 */
function withStop(record: Omit<RunRecord, "profiles" | "checkpoints">, outcome: StopOutcome): Omit<RunRecord, "profiles" | "checkpoints"> {
  if (outcome.error !== undefined) return { ...record, ok: false, error: record.error === undefined ? outcome.error : `${record.error}; ${outcome.error}` };
  if (outcome.note === undefined) return record;
  return { ...record, notes: [...record.notes, outcome.note] };
}

/** Lists the CPU profiles a run left in its folder (they are written when the process exits). */
export function profilesIn(dir: string): string[] {
  try {
    return readdirSync(dir)
      .filter((name) => name.endsWith(".cpuprofile") && isMainThreadProfile(name))
      .map((name) => join(dir, name));
  } catch {
    return [];
  }
}

function describeRun(label: string, testCase: Case, record: RunRecord): string {
  if (!record.ok) return `${label}: FAILED after ${record.seconds.toFixed(1)} s: ${record.error?.split("\n")[0] ?? ""}`;
  const headline = testCase.metrics.filter((spec) => spec.headline);
  const figures = headline.map((spec) => `${formatValue(record.metrics[spec.key], spec)} ${spec.label}`).join(", ");
  return `${label}: ${figures} (${record.seconds.toFixed(1)} s)${record.notes.length > 0 ? ` [${record.notes.join("; ")}]` : ""}`;
}

export function formatValue(value: number | undefined, spec: Pick<MetricSpec, "digits" | "unit">): string {
  if (value === undefined || !Number.isFinite(value)) return "-";
  const text = value.toLocaleString("en-US", { minimumFractionDigits: spec.digits, maximumFractionDigits: spec.digits });
  return spec.unit === "/s" || spec.unit === "" ? text : `${text} ${spec.unit}`;
}

function summarize(scenario: string, testCase: Case, rounds: number, runs: readonly RunRecord[], options: RunnerOptions): CaseResult {
  const withBaselines = options.baselines;
  const baselineIds = withBaselines ? testCase.baselines.map((spec) => spec.id) : [];
  const ids = [testCase.subject.id, ...baselineIds];
  const metrics = testCase.metrics.map((spec): MetricSummary => {
    const values: Record<string, number[]> = {};
    const medians: Record<string, number> = {};
    for (const id of ids) {
      values[id] = Array.from({ length: rounds }, (_, index) => {
        const run = runs.find((candidate) => candidate.target === id && candidate.round === index + 1);
        return run?.ok === true ? (run.metrics[spec.key] ?? Number.NaN) : Number.NaN;
      });
      medians[id] = median(values[id]);
    }
    const subject = medians[testCase.subject.id] ?? Number.NaN;
    const ratioTo = (id: string): number | undefined => {
      const baseline = medians[id];
      return baseline === undefined || !Number.isFinite(baseline) || baseline === 0 ? undefined : subject / baseline;
    };
    const ratios = Object.fromEntries(baselineIds.map((id) => [id, ratioTo(id)]));
    const baselineId = baselineIds[0];
    const ratio = baselineId === undefined ? undefined : ratioTo(baselineId);
    const roundRatios =
      baselineId === undefined
        ? []
        : (values[testCase.subject.id] ?? []).map((value, index) => value / (values[baselineId]?.[index] ?? Number.NaN)).filter(Number.isFinite);
    return { spec, values, medians, ratio, ratios, roundRatios, verdict: verdict(spec, subject, ratio) };
  });
  return {
    scenario,
    id: testCase.id,
    title: testCase.title,
    subject: { id: testCase.subject.id, description: testCase.subject.description },
    baselines: withBaselines ? testCase.baselines.map((spec) => ({ id: spec.id, description: spec.description })) : [],
    job: testCase.job,
    rounds,
    pinning: (({ target, load }) => ({ target: target ?? null, load: load ?? null }))(casePinning(testCase, options)),
    runs,
    metrics,
    ...(testCase.comparison === undefined ? {} : { comparison: testCase.comparison }),
  };
}

function verdict(spec: MetricSpec, subject: number, ratio: number | undefined): "pass" | "fail" | "n/a" {
  const target = spec.target;
  if (target === undefined || !Number.isFinite(subject)) return "n/a";
  const checks: boolean[] = [];
  if (target.ratioAtLeast !== undefined) {
    if (ratio === undefined) return "n/a";
    checks.push(ratio >= target.ratioAtLeast);
  }
  if (target.ratioAtMost !== undefined) {
    if (ratio === undefined) return "n/a";
    checks.push(ratio <= target.ratioAtMost);
  }
  if (target.atMost !== undefined) checks.push(subject <= target.atMost);
  if (target.atLeast !== undefined) checks.push(subject >= target.atLeast);
  if (checks.length === 0) return "n/a";
  return checks.every(Boolean) ? "pass" : "fail";
}
