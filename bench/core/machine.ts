import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { availableParallelism, loadavg, release, totalmem } from "node:os";
import { hasTaskset } from "./processes.ts";

export interface MachineInfo {
  readonly nproc: number;
  readonly cpuModel: string;
  readonly node: string;
  readonly kernel: string;
  readonly memoryGb: number;
  readonly taskset: boolean;
  readonly loadAverage: readonly number[];
}

function cpuModel(): string {
  try {
    const match = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"));
    return match?.[1]?.trim() ?? "unknown";
  } catch {
    return "unknown";
  }
}

/** The machine the figures were measured on. */
export function machineInfo(): MachineInfo {
  return {
    nproc: availableParallelism(),
    cpuModel: cpuModel(),
    node: process.version,
    kernel: release(),
    memoryGb: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    taskset: hasTaskset(),
    loadAverage: loadavg().map((value) => Math.round(value * 100) / 100),
  };
}

/** The code measured: HEAD and the server files that differ from it (runs read the working tree). */
export interface CodeState {
  readonly commit: string;
  readonly modified: readonly string[];
}

export function codeState(root: string): CodeState {
  const git = (...args: string[]): string => {
    try {
      return execFileSync("git", args, { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
    } catch {
      return "";
    }
  };
  const modified = git("status", "--porcelain", "--", "src", "cluster.ts", "package.json")
    .split("\n")
    .filter(Boolean)
    .map((line) => line.slice(3));
  // Porcelain lines are "XY path": the status takes the first three characters.
  return { commit: git("rev-parse", "--short", "HEAD").trim() || "unknown", modified };
}

export function describeMachine(machine: MachineInfo): string {
  return `${machine.nproc} CPU (${machine.cpuModel}), ${machine.memoryGb} GB, Node ${machine.node}, Linux ${machine.kernel}, load average ${machine.loadAverage.join(" ")}`;
}
