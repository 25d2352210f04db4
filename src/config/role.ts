import { cpuBudget } from "./cpu-budget.ts";
import type { Config } from "./schema.ts";

const WORKER_INDEX = "PEER_WORKER_INDEX";
const WORKER_COUNT = "PEER_WORKER_COUNT";

/** What this process is in a cluster: the primary, a worker (with its index), or a lone server. */
export type ProcessRole = { kind: "single" } | { kind: "primary"; workers: number } | { kind: "worker"; index: number; workers: number };

/** Decides the role from config and the environment the primary gives its workers. */
export function processRole(config: Config, isWorker: boolean, env: NodeJS.ProcessEnv = process.env, cpus: () => number = cpuBudget): ProcessRole {
  if (isWorker) return { kind: "worker", index: Number(env[WORKER_INDEX] ?? 0), workers: Number(env[WORKER_COUNT] ?? 1) };
  const workers = config.workers === 0 ? cpus() : config.workers;
  return workers <= 1 ? { kind: "single" } : { kind: "primary", workers };
}

/** Environment for a forked worker: its slot, and how many slots the machine has. */
export const workerEnv = (index: number, workers: number): Record<string, string> => ({ [WORKER_INDEX]: String(index), [WORKER_COUNT]: String(workers) });

/**
 * Each worker's young generation: V8 grows it to 32 MB (two 16 MB semi-spaces) under a storm of
 * set-ups and keeps it, in every worker of the machine. With 4 MB semi-spaces, `npm run bench --
 * hundredk --peers 20000` set up as fast (24.7 against 25.7 s, 1,669 against 1,704 µs of server CPU
 * per peer) and the machine's RSS grew by 12.9 KB per peer against 26.0 once settled.
 */
const WORKER_SEMI_SPACE_FLAG = "--max-semi-space-size=4";

/**
 * The Node flags a worker starts with: the primary's own, and the young generation's size unless
 * the primary's flags or NODE_OPTIONS give one (then the workers keep that).
 */
export function workerExecArgv(execArgv: readonly string[], env: NodeJS.ProcessEnv = process.env): string[] {
  const given = [...execArgv, env["NODE_OPTIONS"] ?? ""].some((flags) => flags.includes("--max-semi-space-size"));
  return given ? [...execArgv] : [...execArgv, WORKER_SEMI_SPACE_FLAG];
}
