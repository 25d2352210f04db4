import {
  applyMessage,
  exhaustive,
  type CallMessage,
  type MutationValue,
  type StoreCall,
  type StoreReply,
  type StoreReplyItem,
  type StoreRequest,
} from "../../protocol/cluster-messages.ts";
import { ProtocolError } from "../../protocol/errors.ts";
import { coalescing, type Schedule, type Sender } from "./channel.ts";
import { MemoryStore } from "../memory/memory-store.ts";
import { applyMutation, replayArgs, replicaSnapshot, withoutListing } from "./mutation.ts";
import type { Departure } from "../state-store.ts";
import { withFields } from "../../internals/object-copy.ts";

/** Anything the host can send to: one replica's end of the IPC channel. */
export type ReplicaLink = Sender<StoreReply>;

export interface StoreHostOptions {
  /** Runs the write of the messages sent in one go; default queueMicrotask (the links bundle a turn's writes). Tests pass a fake clock's. */
  schedule?: Schedule;
}

/**
 * The authoritative copy of the state for one machine, kept by the cluster primary.
 *
 * State-machine replication: each worker keeps a MemoryStore replica and reads from it without
 * IPC (so resolving a signal's target costs no round trip); mutations run here first, in arrival
 * order, and only those that succeed are replayed on every replica in the same order. MemoryStore
 * methods validate before they mutate and take every random choice from their arguments, so the
 * same sequence of calls leaves every copy identical. A caller's answer is its own replica's
 * replay of the change: what that returns is what the store here returned.
 *
 * Calls: each `hello` and each `call` carries the replica's id and gets exactly one answer with
 * it (a `snapshot`; for a call, its `apply` carrying the id when it succeeded, a `result` with
 * the error when it failed), which the replica waits for up to its `callTimeoutMs`. The other
 * replicas' applies are notices, never answered.
 */
export class StoreHost {
  private readonly store = new MemoryStore();
  private readonly replicas = new Set<ReplicaLink>();
  /** What is sent to the replicas in one go (see coalescing): one message per link. */
  private readonly outbox: (entry: [ReplicaLink, StoreReplyItem]) => void;
  private readonly schedule: Schedule;
  private queue: Promise<void> = Promise.resolve();

  constructor(options: StoreHostOptions = {}) {
    this.schedule = options.schedule ?? queueMicrotask;
    this.outbox = coalescing<[ReplicaLink, StoreReplyItem]>((entries) => this.flush(entries), this.schedule);
  }

  /** Handles one message from a replica (checked by the primary's guard). */
  receive(link: ReplicaLink, message: StoreRequest): void {
    switch (message.ps) {
      case "batch":
        for (const call of message.messages) this.call(link, call);
        break;
      case "hello":
        this.enqueue(async () => {
          this.send(link, { ps: "snapshot", id: message.id, state: replicaSnapshot(this.store.exportSnapshot()) });
          this.replicas.add(link);
        });
        break;
      case "call":
        this.call(link, message);
        break;
      default:
        exhaustive(message);
    }
  }

  /** Stops replicating to a link (its worker exited). */
  detach(link: ReplicaLink): void {
    this.replicas.delete(link);
  }

  /**
   * Removes the peers of a dead node everywhere; replicas report the departures to their hubs.
   * Resolves once the replay has been sent to every replica's link (the outbox flushes first).
   */
  removeNode(nodeId: string): Promise<Departure[]> {
    return new Promise((resolve, reject) => {
      this.enqueue(async () => {
        try {
          const departures = await this.apply({ method: "removeNode", args: [nodeId] });
          await new Promise<void>((flushed) => this.schedule(flushed));
          resolve(departures);
        } catch (error) {
          reject(error as Error);
        }
      });
    });
  }

  private call(link: ReplicaLink, message: CallMessage): void {
    this.enqueue(async () => {
      try {
        const value = await this.apply(message, link, message.id);
        // A replica is answered by its own replay of the mutation (see ApplyMessage); a link that
        // holds no replica gets the value.
        if (!this.replicas.has(link)) this.send(link, { ps: "result", id: message.id, ok: true, value });
      } catch (error) {
        const code = error instanceof ProtocolError ? error.code : 500;
        this.send(link, { ps: "result", id: message.id, ok: false, code, message: (error as Error).message });
      }
    });
  }

  private enqueue(task: () => Promise<void>): void {
    this.queue = this.queue.then(task);
  }

  /**
   * Runs a mutation here, then queues its replay to every replica (one message, shared by all links
   * but the caller's, whose copy carries the call's id).
   */
  private async apply<C extends StoreCall>(call: C, caller?: ReplicaLink, id?: number): Promise<MutationValue[C["method"]]> {
    // A caller that holds a replica is answered by its replay: what the store returns here is
    // read only for the replay's arguments.
    const value = await applyMutation(this.store, caller !== undefined && this.replicas.has(caller) ? withoutListing(call) : call);
    if (this.replicas.size > 0) {
      const replay = applyMessage(call.method, replayArgs(call, value));
      for (const replica of this.replicas) this.send(replica, replica === caller ? withFields(replay, { id }) : replay);
    }
    return value;
  }

  /** Every message to a replica goes through the outbox (see flush). */
  private send(link: ReplicaLink, message: StoreReplyItem): void {
    this.outbox([link, message]);
  }

  /**
   * Sends the messages of one go, one message per link, keeping each link's order except that
   * its results go after its applies (a caller seeing newer state with its result is harmless;
   * applies, its own answered ones too, keep their order). Links that only get applies of others'
   * calls are written first: a replica has a mutation in its pipe before the caller that made it
   * gets its answer and acts on it, as when every message was written at once. (When two callers'
   * mutations share a turn, one of them still gets its answer a few microseconds, in this same
   * loop, before the other's pipe has its apply.)
   */
  private flush(entries: [ReplicaLink, StoreReplyItem][]): void {
    const batches = new Map<ReplicaLink, { applies: StoreReplyItem[]; results: StoreReplyItem[]; answers: boolean }>();
    for (const [link, message] of entries) {
      if (!this.replicas.has(link) && message.ps !== "snapshot" && message.ps !== "result") continue; // detached meanwhile
      let batch = batches.get(link);
      if (batch === undefined) batches.set(link, (batch = { applies: [], results: [], answers: false }));
      (message.ps === "result" ? batch.results : batch.applies).push(message);
      if (message.ps === "result" || (message.ps === "apply" && message.id !== undefined)) batch.answers = true;
    }
    const ordered = [...batches].sort(([, a], [, b]) => Number(a.answers) - Number(b.answers));
    for (const [link, { applies, results }] of ordered) {
      const messages = results.length === 0 ? applies : [...applies, ...results];
      link.send(messages.length === 1 ? (messages[0] as StoreReplyItem) : { ps: "batch", messages });
    }
  }
}
