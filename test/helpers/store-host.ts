import { fork, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { primaryToWorkerGuard, type StoreReply, type StoreRequest } from "../../src/protocol/cluster-messages.ts";
import type { Channel } from "../../src/backends/cluster/channel.ts";
import type { Departure } from "../../src/backends/state-store.ts";
import { ROOT } from "./server-process.ts";

/** Parent -> host child (test/helpers/store-host-child.ts). */
export type HostCommand =
  /** A replica's message to the host, on logical link `link`. */
  | { kind: "message"; link: string; message: StoreRequest }
  /** Stop replicating to a link (as the primary does when a worker exits). */
  | { kind: "detach"; link: string }
  /** StoreHost.removeNode, as the primary calls it for a dead worker. */
  | { kind: "removeNode"; id: number; nodeId: string };

/** Host child -> parent. */
export type HostReply =
  | { kind?: undefined; link: string; message: StoreReply }
  | { kind: "removed"; id: number; departures?: Departure[]; error?: string }
  /** The host listens: sent once, after start-up. */
  | { kind: "up" };

export interface ReplicaChannel extends Channel<StoreRequest, StoreReply> {
  readonly id: string;
  /** Tells the host to stop replicating to this link, and drops whatever still arrives for it. */
  detach(): void;
}

export interface StoreHostProcess {
  readonly child: ChildProcess;
  /** A new logical link to the host: what one worker's IPC channel is to the primary. */
  link(): ReplicaChannel;
  /** Runs StoreHost.removeNode in the host, as the primary does when a worker dies. */
  removeNode(nodeId: string): Promise<Departure[]>;
  /** Kills the host process and resolves once it has exited. */
  kill(): Promise<void>;
}

/** Forks a real process running a StoreHost (test/helpers/store-host-child.ts) and waits until it is up. */
export async function forkStoreHost(): Promise<StoreHostProcess> {
  const child = fork(join(ROOT, "test/helpers/store-host-child.ts"), [], {
    cwd: ROOT,
    execArgv: ["--import", "tsx"],
    serialization: "advanced",
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  // A send racing the child's death reports ERR_IPC_CHANNEL_CLOSED here instead of crashing the test run.
  child.on("error", () => undefined);
  const up = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the store host process did not start")), 15_000);
    child.on("message", (raw: unknown) => {
      if ((raw as HostReply).kind !== "up") return;
      clearTimeout(timer);
      resolve();
    });
    void exited.then(() => reject(new Error("the store host process exited during start-up")));
  });

  const handlers = new Map<string, (message: StoreReply) => void>();
  const removals = new Map<number, { resolve: (departures: Departure[]) => void; reject: (error: Error) => void }>();
  let nextRemoval = 1;
  // Each reply is handled in a turn of its own, in order: a real worker reads its own pipe, so a
  // message to one replica and the next one to another are never handled back to back, without
  // the first one's promise continuations running in between. (Handled as Node emits them, all
  // messages of one read would run before any continuation and hide ordering mistakes.)
  const replies: HostReply[] = [];
  const handleNext = (): void => {
    const reply = replies.shift();
    if (reply !== undefined) handle(reply);
    if (replies.length > 0) setImmediate(handleNext);
  };
  child.on("message", (raw: unknown) => {
    if ((raw as HostReply).kind === "up") return;
    replies.push(raw as HostReply);
    if (replies.length === 1) setImmediate(handleNext);
  });
  const fromHost = primaryToWorkerGuard((ps, problem) => console.error(`the store host sent a malformed ${String(ps)}: ${problem}`));
  const handle = (reply: HostReply): void => {
    if (reply.kind === "up") return;
    if (reply.kind === "removed") {
      const pending = removals.get(reply.id);
      removals.delete(reply.id);
      if (reply.error !== undefined) pending?.reject(new Error(reply.error));
      else pending?.resolve(reply.departures ?? []);
      return;
    }
    // Checked as a worker checks what the primary sends: the contract suite runs the guard on real traffic.
    if (fromHost(reply.message)) handlers.get(reply.link)?.(reply.message as StoreReply);
  };
  const command = (message: HostCommand): void => {
    if (child.connected) child.send(message);
  };

  await up;
  return {
    child,
    link() {
      const id = randomUUID();
      return {
        id,
        send: (message) => command({ kind: "message", link: id, message }),
        onMessage: (handler) => {
          handlers.set(id, handler);
        },
        detach: () => {
          handlers.delete(id);
          command({ kind: "detach", link: id });
        },
      };
    },
    removeNode(nodeId) {
      const id = nextRemoval++;
      return new Promise((resolve, reject) => {
        removals.set(id, { resolve, reject });
        command({ kind: "removeNode", id, nodeId });
      });
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exited;
    },
  };
}
