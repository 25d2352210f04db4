import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";

/**
 * How many CPUs this process may really use: the CPUs it may run on, lowered to its container's
 * CPU quota when it has one (`docker run --cpus 2`, a Kubernetes CPU limit). Node reports the
 * machine's CPUs inside a container, and a worker per CPU beyond the quota only adds contention.
 */
export function cpuBudget(readText: (path: string) => string | undefined = readQuietly): number {
  const cpus = availableParallelism();
  const quota = cgroupV2Quota(readText("/sys/fs/cgroup/cpu.max")) ?? cgroupV1Quota(readText("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"), readText("/sys/fs/cgroup/cpu/cpu.cfs_period_us"));
  return quota === undefined ? cpus : Math.max(1, Math.min(cpus, quota));
}

/** cgroup v2 `cpu.max` ("<quota> <period>" or "max <period>"): the quota in whole CPUs, rounded up; undefined without one. */
export function cgroupV2Quota(text: string | undefined): number | undefined {
  const [quota, period] = (text ?? "").trim().split(/\s+/);
  return cpusOf(quota, period);
}

/** cgroup v1 `cpu.cfs_quota_us` (-1: none) and `cpu.cfs_period_us`: the quota in whole CPUs, rounded up. */
export function cgroupV1Quota(quota: string | undefined, period: string | undefined): number | undefined {
  return cpusOf(quota?.trim(), period?.trim());
}

function cpusOf(quota: string | undefined, period: string | undefined): number | undefined {
  const q = Number(quota);
  const p = Number(period);
  if (!Number.isFinite(q) || !Number.isFinite(p) || q <= 0 || p <= 0) return undefined;
  return Math.ceil(q / p);
}

function readQuietly(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}
