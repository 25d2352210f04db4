import { fork, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { primaryToWorkerGuard, type LimitsCalls, type LimitsResults } from "../../src/protocol/cluster-messages.ts";
import type { Channel } from "../../src/backends/cluster/channel.ts";
import { ROOT } from "./server-process.ts";

/** Parent -> host child (test/helpers/limits-host-child.ts): a worker's call on logical link `link`. */
export interface LimitsHostCommand {
  link: string;
  message: LimitsCalls;
}

/** Host child -> parent: the answer for logical link `link`. */
export interface LimitsHostReply {
  link: string;
  message: LimitsResults;
}

export interface LimitsHostProcess {
  readonly child: ChildProcess;
  /** A new logical link to the host: what one worker's IPC channel is to the primary. */
  link(): Channel<LimitsCalls, LimitsResults>;
  /** Kills the host process and resolves once it has exited. */
  kill(): Promise<void>;
}

/** Forks a real process running a LimitsHost, over IPC with advanced serialization as the primary uses, and waits until it is up. */
export async function forkLimitsHost(): Promise<LimitsHostProcess> {
  const child = fork(join(ROOT, "test/helpers/limits-host-child.ts"), [], {
    cwd: ROOT,
    execArgv: ["--import", "tsx"],
    serialization: "advanced",
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.on("error", () => undefined); // a send racing the child's death
  const handlers = new Map<string, (message: LimitsResults) => void>();
  // Checked as a worker checks what the primary sends: the contract suite runs the guard on real traffic.
  const fromHost = primaryToWorkerGuard((ps, problem) => console.error(`the limits host sent a malformed ${String(ps)}: ${problem}`));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the limits host process did not start")), 15_000);
    child.on("message", (raw: unknown) => {
      if ((raw as { up?: boolean }).up === true) {
        clearTimeout(timer);
        resolve();
        return;
      }
      const reply = raw as LimitsHostReply;
      if (fromHost(reply.message)) handlers.get(reply.link)?.(reply.message as LimitsResults);
    });
    void exited.then(() => reject(new Error("the limits host process exited during start-up")));
  });
  return {
    child,
    link() {
      const id = randomUUID();
      return {
        send: (message) => {
          if (child.connected) child.send({ link: id, message } as LimitsHostCommand);
        },
        onMessage: (handler) => {
          handlers.set(id, handler);
        },
      };
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exited;
    },
  };
}
