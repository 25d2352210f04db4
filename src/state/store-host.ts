import type { Mutation, PrimaryToWorker, WorkerToPrimary } from "../protocol/cluster-messages.ts";
import { ProtocolError } from "../protocol/errors.ts";
import { MemoryStore } from "./memory-store.ts";
import type { Departure } from "./store.ts";

/** Anything the host can send to: one replica's end of the IPC channel. */
export interface ReplicaLink {
  send(message: PrimaryToWorker): void;
}

/**
 * The authoritative copy of the state for one machine, kept by the cluster primary.
 *
 * State-machine replication: each worker keeps a MemoryStore replica and reads from it without
 * IPC (so resolving a signal's target costs no round trip); mutations run here first, in arrival
 * order, and only those that succeed are replayed on every replica in the same order. MemoryStore
 * methods validate before they mutate and take every random choice from their arguments, so the
 * same sequence of calls leaves every copy identical. The caller gets its result after its own
 * replica has applied the change (one FIFO channel carries both).
 */
export class StoreHost {
  private readonly store = new MemoryStore();
  private readonly replicas = new Set<ReplicaLink>();
  private queue: Promise<void> = Promise.resolve();

  /** Handles one message from a replica. */
  receive(link: ReplicaLink, message: WorkerToPrimary): void {
    if (message.ps === "hello") {
      this.enqueue(async () => {
        link.send({ ps: "snapshot", state: this.store.exportSnapshot() });
        this.replicas.add(link);
      });
    } else if (message.ps === "call") {
      this.enqueue(async () => {
        try {
          const value = await this.apply(message.method, message.args);
          link.send({ ps: "result", id: message.id, ok: true, value });
        } catch (error) {
          const code = error instanceof ProtocolError ? error.code : 500;
          link.send({ ps: "result", id: message.id, ok: false, code, message: (error as Error).message });
        }
      });
    }
  }

  /** Stops replicating to a link (its worker exited). */
  detach(link: ReplicaLink): void {
    this.replicas.delete(link);
  }

  /** Removes the peers of a dead node everywhere; replicas report the departures to their hubs. */
  removeNode(nodeId: string): Promise<Departure[]> {
    return new Promise((resolve, reject) => {
      this.enqueue(async () => {
        try {
          resolve((await this.apply("removeNode", [nodeId])) as Departure[]);
        } catch (error) {
          reject(error as Error);
        }
      });
    });
  }

  private enqueue(task: () => Promise<void>): void {
    this.queue = this.queue.then(task);
  }

  private async apply(method: Mutation, args: unknown[]): Promise<unknown> {
    const fn = this.store[method] as (...params: unknown[]) => Promise<unknown>;
    const value = await fn.apply(this.store, args);
    for (const replica of this.replicas) replica.send({ ps: "apply", method, args });
    return value;
  }
}
