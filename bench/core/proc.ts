import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";

/** What the orchestrator measures about a target's processes at a checkpoint. */
export interface Snapshot {
  /** Resident set size summed over the target's process trees, in KiB (VmRSS). */
  readonly rssKb: number;
  /** User + system CPU time summed over the target's process trees, in milliseconds. */
  readonly cpuMs: number;
  /** Number of processes measured (a cluster primary and its workers count separately). */
  readonly processes: number;
  /** The same readings per root PID of the target (e.g. per node), each with its descendants, named when the target names them. */
  readonly roots: readonly { readonly pid: number; readonly name: string | undefined; readonly rssKb: number; readonly cpuMs: number }[];
  /** user+nice+system time of the target's pinned cores, all processes included, in ms (0 when unpinned). */
  readonly targetCoresBusyMs: number;
  /** The same for the load process's pinned cores. */
  readonly loadCoresBusyMs: number;
  /** The same for the target's and the load's cores together (they overlap when the target gets "0,1" and the load "1"). */
  readonly pinnedCoresBusyMs: number;
  /** True when the target's and the load's CPU lists overlap. */
  readonly sharedCores: boolean;
  /** Orchestrator wall clock, milliseconds (performance.now()). */
  readonly atMs: number;
  /** CLOCK_MONOTONIC in microseconds: the clock V8 stamps CPU profile samples with. */
  readonly monotonicUs: number;
}

let clockTicks: number | undefined;

/** Kernel clock ticks per second, the unit of utime/stime in /proc/<pid>/stat. */
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

interface StatLine {
  /** R, S, D, Z (dead, not yet reaped), ... */
  readonly state: string;
  readonly ppid: number;
  /** Process group id. */
  readonly pgrp: number;
  readonly cpuTicks: number;
}

/** Parses /proc/<pid>/stat; the command name may contain spaces and parentheses, so split after the last ")". */
function readStat(pid: number): StatLine | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  // After the command: state(3) ppid(4) pgrp(5) ... utime(14) stime(15), counted from 1 for the whole line.
  return { state: fields[0] ?? "", ppid: Number(fields[1]), pgrp: Number(fields[2]), cpuTicks: Number(fields[11]) + Number(fields[12]) };
}

function readRssKb(pid: number): number {
  try {
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match ? Number(match[1]) : 0;
  } catch {
    return 0;
  }
}

/**
 * The running processes of process group `pgid` (a target started as its own group: the server and
 * its workers, even those whose parent is gone). A dead process that its new parent has not reaped
 * yet (a zombie) does not count.
 */
export function groupMembers(pgid: number): number[] {
  const members: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (stat !== undefined && stat.pgrp === pgid && stat.state !== "Z") members.push(Number(entry));
  }
  return members;
}

/** `pid` and all its live descendants (a clustered server is a primary plus workers). */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (stat === undefined) continue;
    const list = children.get(stat.ppid);
    if (list === undefined) children.set(stat.ppid, [Number(entry)]);
    else list.push(Number(entry));
  }
  const tree: number[] = [];
  const pending = [pid];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    tree.push(next);
    pending.push(...(children.get(next) ?? []));
  }
  return tree;
}

/** Parses a taskset CPU list ("0", "0,1", "0-3") into CPU numbers. */
export function parseCpuList(list: string | undefined): number[] {
  if (list === undefined) return [];
  const cpus: number[] = [];
  for (const part of list.split(",")) {
    const [from, to] = part.split("-").map(Number);
    if (from === undefined || !Number.isInteger(from)) continue;
    for (let cpu = from; cpu <= (to ?? from); cpu++) cpus.push(cpu);
  }
  return cpus;
}

/** True when two CPU lists (parsed by parseCpuList) have a CPU in common. */
export const cpusOverlap = (a: readonly number[], b: readonly number[]): boolean => a.some((cpu) => b.includes(cpu));

/** user+nice+system of the given CPUs from /proc/stat, in ms: with our processes' own CPU, shows what others took. */
function coresBusyMs(cpus: readonly number[]): number {
  if (cpus.length === 0) return 0;
  let ticks = 0;
  try {
    for (const line of readFileSync("/proc/stat", "utf8").split("\n")) {
      const match = /^cpu(\d+) (\d+) (\d+) (\d+)/.exec(line);
      if (match && cpus.includes(Number(match[1]))) ticks += Number(match[2]) + Number(match[3]) + Number(match[4]);
    }
  } catch {
    return 0;
  }
  return (ticks * 1000) / ticksPerSecond();
}

/** RSS and CPU of the given processes and their descendants, read from /proc. */
export function snapshot(
  pids: readonly number[],
  atMs: number,
  targetCpus: readonly number[] = [],
  loadCpus: readonly number[] = [],
  names: readonly string[] = [],
): Snapshot {
  const roots: { pid: number; name: string | undefined; rssKb: number; cpuMs: number }[] = [];
  let processes = 0;
  for (const [index, root] of pids.entries()) {
    let rootRss = 0;
    let rootTicks = 0;
    for (const pid of processTree(root)) {
      const stat = readStat(pid);
      if (stat === undefined) continue;
      processes++;
      rootTicks += stat.cpuTicks;
      rootRss += readRssKb(pid);
    }
    roots.push({ pid: root, name: names[index], rssKb: rootRss, cpuMs: (rootTicks * 1000) / ticksPerSecond() });
  }
  const rssKb = roots.reduce((sum, root) => sum + root.rssKb, 0);
  const cpuMs = roots.reduce((sum, root) => sum + root.cpuMs, 0);
  return {
    rssKb,
    cpuMs,
    processes,
    roots,
    atMs,
    monotonicUs: Number(process.hrtime.bigint() / 1000n),
    targetCoresBusyMs: coresBusyMs(targetCpus),
    loadCoresBusyMs: coresBusyMs(loadCpus),
    pinnedCoresBusyMs: coresBusyMs([...new Set([...targetCpus, ...loadCpus])]),
    sharedCores: cpusOverlap(targetCpus, loadCpus),
  };
}
