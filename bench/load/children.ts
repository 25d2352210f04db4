import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { ROOT } from "../core/targets.ts";

/** This process's soft limit on open files (children inherit it), from /proc/self/limits. */
export function openFileLimit(): number | undefined {
  try {
    const match = /^Max open files\s+(\d+)/m.exec(readFileSync("/proc/self/limits", "utf8"));
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Starts `count` load processes running `script` (a TypeScript file, over IPC) and adds them to
 * `children`; their stdout and stderr lines go to `output`, which keeps the last 100.
 */
export function spawnLoadProcesses(script: string, count: number, children: ChildProcess[], output: string[]): void {
  const keep = (chunk: Buffer): void => {
    output.push(...chunk.toString().split("\n").filter(Boolean));
    if (output.length > 100) output.splice(0, output.length - 100);
  };
  for (let shard = 0; shard < count; shard++) {
    // Started from this process, the children inherit its CPU affinity (the load cores).
    const child = spawn(process.execPath, ["--import", "tsx", script], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe", "ipc"] });
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    children.push(child);
  }
}

/** Waits for a message from `child` matching `accept`, bounded by `timeoutMs`; rejects if the child exits first. */
export function waitFor<M, T extends M>(child: ChildProcess, accept: (message: M) => message is T, timeoutMs: number, what: string, output: string[]): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`load process ${child.pid} did not report ${what} within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    const onMessage = (message: M): void => {
      if (!accept(message)) return;
      cleanup();
      resolve(message);
    };
    const onExit = (code: number | null, signal: string | null): void => {
      cleanup();
      reject(new Error(`load process ${child.pid} exited (${code ?? signal}) before ${what}:\n${output.slice(-10).join("\n")}`));
    };
    const cleanup = (): void => {
      clearTimeout(timer);
      child.off("message", onMessage);
      child.off("exit", onExit);
    };
    child.on("message", onMessage);
    child.once("exit", onExit);
  });
}

/** `messageIs<M>()("ready")`: a type guard for the messages of union `M` whose `type` is "ready". */
export const messageIs =
  <M extends { type: string }>() =>
  <K extends M["type"]>(type: K) =>
  (message: M): message is Extract<M, { type: K }> =>
    message.type === type;

/** Failure reasons summed over the load processes' summaries, the `most` frequent first, as note lines. */
export function reasonNotes(summaries: readonly { reasons: Readonly<Record<string, number>> }[], most: number): string[] {
  const reasons = new Map<string, number>();
  for (const summary of summaries) for (const [text, count] of Object.entries(summary.reasons)) reasons.set(text, (reasons.get(text) ?? 0) + count);
  return [...reasons]
    .sort((a, b) => b[1] - a[1])
    .slice(0, most)
    .map(([text, count]) => `${count} x ${text}`);
}
