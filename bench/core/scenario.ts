import type { ClientKind } from "../load/clients.ts";
import type { LoadJob, Transport } from "../load/protocol.ts";
import type { TargetSpec } from "./targets.ts";

/**
 * What a scenario is made of. A scenario builds cases; each case runs one load job against a
 * subject target and its baselines, round after round (A B, B A, A B ...), and states which metrics
 * matter and what they should reach. The runner, the report and the chart need nothing else, so
 * a new scenario (e.g. `cluster`: subject = all workers, baseline = one worker; `nodes`: a target
 * that starts Redis and N nodes) is one file in bench/scenarios plus a line in its index.
 */

/** What a metric should reach. Ratios are subject / baseline medians; absolute bounds apply to the subject's median. */
export interface MetricTarget {
  readonly ratioAtLeast?: number;
  readonly ratioAtMost?: number;
  readonly atMost?: number;
  readonly atLeast?: number;
  /** How the issue states it, for the table and docs. */
  readonly text: string;
}

export interface MetricSpec {
  /** Key in the job's metrics. */
  readonly key: string;
  readonly label: string;
  readonly unit: string;
  readonly better: "higher" | "lower";
  readonly digits: number;
  /** Listed first in the table, drawn in the chart and shown after each run. */
  readonly headline?: boolean;
  /** Drawn in the chart too (e.g. CPU per operation, the figure least disturbed by a busy machine). */
  readonly chart?: boolean;
  readonly target?: MetricTarget;
}

export interface Case {
  /** Unique within the scenario, e.g. "ws/sdp". */
  readonly id: string;
  readonly title: string;
  readonly subject: TargetSpec;
  /** Measured in the same rounds, interleaved with the subject; may be empty. */
  readonly baselines: readonly TargetSpec[];
  readonly job: LoadJob;
  readonly metrics: readonly MetricSpec[];
  /** Upper bound for one run (target start, job, stop). */
  readonly timeoutMs: number;
  /**
   * taskset CPU lists for this case when pinning is on, instead of the defaults (server on 0, load
   * on 1); `--target-cpus`/`--load-cpus` on the command line still win. E.g. `cluster` gives the
   * server both cores ("0,1") in both configurations.
   */
  readonly targetCpus?: string;
  readonly loadCpus?: string;
  /** The load's clients for this case instead of `--client`'s (the signal table runs both kinds side by side). */
  readonly client?: ClientKind;
  /** One of its metrics held against the same metric of another case of the scenario. */
  readonly comparison?: CaseComparison;
}

/**
 * A metric of one case against the same metric of another case of the same scenario, by their
 * subjects' medians: for figures two configurations measure with different jobs (hundredk's
 * cluster and one process hold different numbers of peers; per peer, they compare).
 */
export interface CaseComparison {
  /** The metric's key, which both cases report. */
  readonly metric: string;
  /** The other case's id. */
  readonly against: string;
  readonly label: string;
  /** The target: this case's median at most this many times the other's. */
  readonly ratioAtMost: number;
  readonly text: string;
}

/** Command-line choices a scenario may honour when it builds its cases. */
export interface ScenarioOptions {
  readonly quick: boolean;
  readonly transports: readonly Transport[];
  readonly payloads: readonly ("sdp" | "ice")[];
  /** Measurement window override, milliseconds. */
  readonly durationMs: number | undefined;
  /** Size overrides; each scenario documents which it reads. */
  readonly peers: number | undefined;
  readonly pairs: number | undefined;
  readonly window: number | undefined;
  readonly queued: number | undefined;
  readonly dataBytes: number | undefined;
  readonly namespaceSize: number | undefined;
  /** cluster: workers of the "all workers" configuration (default: CPUs); stress: workers (default 2). */
  readonly workers: number | undefined;
  /** stress: connections, per-connection deadline (ms), load processes. */
  readonly connections: number | undefined;
  readonly deadlineMs: number | undefined;
  readonly loadProcesses: number | undefined;
  /** nodes: the Socket.IO Redis adapters peer-server runs with (the bare relay's is always the sharded one). */
  readonly adapters: readonly ("sharded" | "classic")[];
  /** nodes: how many nodes each side runs on (default 2). */
  readonly nodes: number | undefined;
  /** nodes: one redis-server, or a Redis Cluster of 3 masters. */
  readonly redis: "single" | "cluster";
  /** `--client` was given: cases use that kind of load client only. */
  readonly clientChosen: boolean;
}

export interface Scenario {
  readonly name: string;
  readonly summary: string;
  /** Rounds when --rounds is not given (default 3). */
  readonly defaultRounds?: number;
  cases(options: ScenarioOptions): Case[];
}

/** Metrics every throughput job reports about the processes themselves: load saturation and noise from other processes. */
export const PROCESS_METRICS: readonly MetricSpec[] = [
  { key: "loadCpuPct", label: "load process CPU", unit: "%", better: "lower", digits: 0 },
  { key: "othersTargetCpuPct", label: "others on target core", unit: "%", better: "lower", digits: 0 },
  { key: "othersLoadCpuPct", label: "others on load core", unit: "%", better: "lower", digits: 0 },
];

/**
 * For cases whose target and load share cores (target on "0,1", load on "1"): the per-core noise
 * figures above cannot be told apart there, so report what other processes took of all the
 * pinned cores together.
 */
export const SHARED_CORES_METRICS: readonly MetricSpec[] = [
  { key: "loadCpuPct", label: "load process CPU", unit: "%", better: "lower", digits: 0 },
  { key: "othersCpuPct", label: "others on the pinned cores", unit: "%", better: "lower", digits: 0 },
];

/** How tables and charts name a transport. */
export const TRANSPORT_TITLE: Readonly<Record<Transport, string>> = { ws: "raw /ws", sio: "Socket.IO" };
