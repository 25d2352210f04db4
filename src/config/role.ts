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
