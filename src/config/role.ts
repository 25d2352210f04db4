import { cpuBudget } from "./cpu-budget.ts";
import type { Config } from "./schema.ts";

const WORKER_INDEX = "PEER_WORKER_INDEX";

/** What this process is in a cluster: the primary, a worker (with its index), or a lone server. */
export type ProcessRole = { kind: "single" } | { kind: "primary"; workers: number } | { kind: "worker"; index: number };

/** Decides the role from config and the environment the primary gives its workers. */
export function processRole(config: Config, isWorker: boolean, env: NodeJS.ProcessEnv = process.env, cpus: () => number = cpuBudget): ProcessRole {
  if (isWorker) return { kind: "worker", index: Number(env[WORKER_INDEX] ?? 0) };
  const workers = config.workers === 0 ? cpus() : config.workers;
  return workers <= 1 ? { kind: "single" } : { kind: "primary", workers };
}

/** Environment for a forked worker. */
export const workerEnv = (index: number): Record<string, string> => ({ [WORKER_INDEX]: String(index) });
