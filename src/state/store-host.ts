import type { Mutation, PrimaryToWorker, WorkerToPrimary } from "../protocol/cluster-messages.ts";
import { ProtocolError } from "../protocol/errors.ts";
import { coalescing } from "./channel.ts";
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
  /** Per link: what is sent to it in one turn goes out as one IPC message. */
  private readonly outboxes = new Map<ReplicaLink, (message: PrimaryToWorker) => void>();
  private queue: Promise<void> = Promise.resolve();

  /** Handles one message from a replica. */
  receive(link: ReplicaLink, message: WorkerToPrimary): void {
    if (message.ps === "batch") {
      for (const inner of message.messages) this.receive(link, inner);
    } else if (message.ps === "hello") {
      this.enqueue(async () => {
        this.send(link, { ps: "snapshot", state: this.store.exportSnapshot() });
        this.replicas.add(link);
      });
    } else if (message.ps === "call") {
      this.enqueue(async () => {
        try {
          const value = await this.apply(message.method, message.args);
          this.send(link, { ps: "result", id: message.id, ok: true, value });
        } catch (error) {
          const code = error instanceof ProtocolError ? error.code : 500;
          this.send(link, { ps: "result", id: message.id, ok: false, code, message: (error as Error).message });
        }
      });
    }
  }

  /** Stops replicating to a link (its worker exited). */
  detach(link: ReplicaLink): void {
    this.replicas.delete(link);
    this.outboxes.delete(link);
  }

  /**
   * Removes the peers of a dead node everywhere; replicas report the departures to their hubs.
   * Resolves once the replay has been written to every replica (the outboxes flush first).
   */
  removeNode(nodeId: string): Promise<Departure[]> {
    return new Promise((resolve, reject) => {
      this.enqueue(async () => {
        try {
          const departures = (await this.apply("removeNode", [nodeId])) as Departure[];
          await new Promise((flushed) => setImmediate(flushed));
          resolve(departures);
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
    for (const replica of this.replicas) this.send(replica, { ps: "apply", method, args });
    return value;
  }

  /**
   * Every message to a replica goes through here: one FIFO per link keeps applies and results in
   * order, and a link's messages of one turn are written together. Writes to all links happen in
   * the same flush turn, so a replica has an apply in its pipe before the caller acts on the result.
   */
  private send(link: ReplicaLink, message: PrimaryToWorker): void {
    let outbox = this.outboxes.get(link);
    if (outbox === undefined) {
      outbox = coalescing<PrimaryToWorker>((messages) => {
        if (this.outboxes.get(link) !== outbox) return; // detached meanwhile
        link.send(messages.length === 1 ? (messages[0] as PrimaryToWorker) : { ps: "batch", messages });
      });
      this.outboxes.set(link, outbox);
    }
    outbox(message);
  }
}
