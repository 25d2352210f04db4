import { availableParallelism } from "node:os";
import { describe, expect, it } from "vitest";
import { cgroupV1Quota, cgroupV2Quota, cpuBudget } from "../../src/config/cpu-budget.ts";

describe("the CPU budget that workers 0 uses", () => {
  it("reads a cgroup v2 quota in whole CPUs, rounded up; `max` is no quota", () => {
    expect(cgroupV2Quota("200000 100000\n")).toBe(2);
    expect(cgroupV2Quota("150000 100000")).toBe(2);
    expect(cgroupV2Quota("50000 100000")).toBe(1);
    expect(cgroupV2Quota("max 100000")).toBeUndefined();
    expect(cgroupV2Quota(undefined)).toBeUndefined();
  });

  it("reads a cgroup v1 quota; -1 is none", () => {
    expect(cgroupV1Quota("300000", "100000")).toBe(3);
    expect(cgroupV1Quota("-1", "100000")).toBeUndefined();
  });

  it("a container limited to one CPU gets one worker's worth; no quota leaves the machine's CPUs", () => {
    const files = (cpuMax: string | undefined) => (path: string) => (path === "/sys/fs/cgroup/cpu.max" ? cpuMax : undefined);
    expect(cpuBudget(files("100000 100000"))).toBe(1);
    expect(cpuBudget(files("max 100000"))).toBe(availableParallelism());
    expect(cpuBudget(files(`${(availableParallelism() + 4) * 100000} 100000`))).toBe(availableParallelism());
  });
});
