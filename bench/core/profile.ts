import { readFileSync } from "node:fs";
import { relative } from "node:path";
import { fileURLToPath } from "node:url";
import { ROOT } from "./targets.ts";

/** The parts of a V8 .cpuprofile the summary reads. */
interface CpuProfile {
  startTime: number;
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }[];
  samples?: number[];
  timeDeltas?: number[];
}

export interface HotFunction {
  readonly name: string;
  /** path:line relative to the repository, or a node: / package location. */
  readonly location: string;
  /** Who owns the code: "ours" (src/, cluster.ts), a package name, "node" or "v8". */
  readonly owner: string;
  readonly selfMs: number;
  /** Share of the busy (non-idle) time. */
  readonly pct: number;
}

export interface ProfileSummary {
  readonly file: string;
  /** The part of the profile summarized (CLOCK_MONOTONIC µs), when cut to a measurement window. */
  readonly window: { readonly fromUs: number; readonly toUs: number } | undefined;
  readonly busyMs: number;
  readonly idleMs: number;
  /** Busy time by owner ("ours", "ws", "socket.io", "engine.io", "node", "gc", ...). */
  readonly byOwner: readonly { owner: string; ms: number; pct: number }[];
  readonly top: readonly HotFunction[];
  readonly topOurs: readonly HotFunction[];
}

function ownerOf(url: string, name: string): string {
  if (url === "") return name === "(garbage collector)" ? "gc" : name === "(program)" || name === "(idle)" ? name : "v8";
  if (url.startsWith("node:")) return "node";
  const packageMatch = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (packageMatch) return packageMatch[1] as string;
  const path = url.startsWith("file://") ? fileURLToPath(url) : url;
  const inside = relative(ROOT, path);
  return inside.startsWith("src/") || inside === "cluster.ts" ? "ours" : inside.startsWith("bench/") ? "bench" : "other";
}

function locationOf(url: string, line: number): string {
  if (url === "") return "";
  if (url.startsWith("file://")) {
    const path = fileURLToPath(url);
    const packageIndex = path.lastIndexOf("node_modules/");
    if (packageIndex >= 0) return `${path.slice(packageIndex + 13)}:${line + 1}`;
    // tsx compiles each .ts file to a single line: the position says nothing, the file and the function name do.
    return path.endsWith(".ts") ? relative(ROOT, path) : `${relative(ROOT, path)}:${line + 1}`;
  }
  return `${url}:${line + 1}`;
}

/**
 * True for a process's main-thread profile. `--cpu-prof` also profiles worker threads (tsx runs
 * its module loader in one); their files carry a non-zero thread id: CPU.<date>.<time>.<pid>.<tid>.<seq>.cpuprofile.
 */
export function isMainThreadProfile(file: string): boolean {
  const match = /CPU\.\d+\.\d+\.\d+\.(\d+)\.\d+\.cpuprofile$/.exec(file);
  return match === null || match[1] === "0";
}

/** Self time per function in one profile: where the process spent its own CPU. */
export function summarizeProfile(file: string, window?: { fromUs: number; toUs: number }, topCount = 15): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfByNode = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  // Sample i is taken at startTime + deltas[0..i]; it lasts until the next one.
  let at = profile.startTime;
  for (let index = 0; index < samples.length; index++) {
    at += deltas[index] ?? 0;
    if (window !== undefined && (at < window.fromUs || at > window.toUs)) continue;
    const id = samples[index] as number;
    selfByNode.set(id, (selfByNode.get(id) ?? 0) + (deltas[index + 1] ?? 0) / 1000);
  }
  const byFunction = new Map<string, { name: string; location: string; owner: string; selfMs: number }>();
  const byOwner = new Map<string, number>();
  let idleMs = 0;
  let busyMs = 0;
  for (const [id, ms] of selfByNode) {
    const frame = nodes.get(id)?.callFrame;
    if (frame === undefined) continue;
    const name = frame.functionName === "" ? "(anonymous)" : frame.functionName;
    const owner = ownerOf(frame.url, name);
    if (owner === "(idle)") {
      idleMs += ms;
      continue;
    }
    busyMs += ms;
    byOwner.set(owner, (byOwner.get(owner) ?? 0) + ms);
    const location = locationOf(frame.url, frame.lineNumber);
    const key = `${name}@${location}`;
    const entry = byFunction.get(key);
    if (entry === undefined) byFunction.set(key, { name, location, owner, selfMs: ms });
    else entry.selfMs += ms;
  }
  const ranked = [...byFunction.values()].sort((a, b) => b.selfMs - a.selfMs).map((entry) => ({ ...entry, pct: busyMs > 0 ? (entry.selfMs / busyMs) * 100 : 0 }));
  return {
    file,
    window,
    busyMs,
    idleMs,
    byOwner: [...byOwner.entries()].sort((a, b) => b[1] - a[1]).map(([owner, ms]) => ({ owner, ms, pct: busyMs > 0 ? (ms / busyMs) * 100 : 0 })),
    top: ranked.slice(0, topCount),
    topOurs: ranked.filter((entry) => entry.owner === "ours").slice(0, topCount),
  };
}

/** A profile summary as terminal text. */
export function formatProfile(summary: ProfileSummary): string {
  const scope = summary.window === undefined ? "whole process" : `measurement window ${((summary.window.toUs - summary.window.fromUs) / 1e6).toFixed(1)} s`;
  const lines = [`profile ${relative(ROOT, summary.file)} (${scope}): busy ${summary.busyMs.toFixed(0)} ms, idle ${summary.idleMs.toFixed(0)} ms`];
  lines.push(`  by owner: ${summary.byOwner.map((entry) => `${entry.owner} ${entry.pct.toFixed(1)}%`).join(", ")}`);
  const table = (title: string, rows: readonly HotFunction[]): void => {
    lines.push(`  ${title}`);
    for (const row of rows) lines.push(`    ${row.pct.toFixed(1).padStart(5)}%  ${row.selfMs.toFixed(0).padStart(6)} ms  ${row.name.padEnd(32).slice(0, 40)} ${row.owner.padEnd(12)} ${row.location}`);
  };
  table("top self time:", summary.top);
  table("top self time in our code (src/):", summary.topOurs);
  return lines.join("\n");
}
