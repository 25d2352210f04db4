import { type Mutation, type PrimaryToWorker, type WorkerToPrimary } from "../protocol/cluster-messages.ts";
import { ErrorCode, ProtocolError } from "../protocol/errors.ts";
import type { Meta } from "../protocol/requests.ts";
import { coalescing, type Channel } from "./channel.ts";
import { MemoryStore } from "./memory-store.ts";
import type {
  Departure,
  JoinOptions,
  JoinResult,
  MatchOutcome,
  MatchTicket,
  MemberPage,
  PeerRecord,
  Registration,
  RegisterPeer,
  RoomInfo,
  RoomJoinResult,
  StateStore,
  StoreStats,
} from "./store.ts";

export interface ReplicatedStoreOptions {
  /** How long a mutation may wait for the primary before failing with 503. */
  callTimeoutMs: number;
  /** Told about departures the primary decided (a dead worker's peers), so local peers can be told. */
  onDepartures?: (departures: Departure[]) => void;
}

interface Pending {
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

/**
 * A worker's view of the machine-wide state: a MemoryStore replica fed by the primary's StoreHost.
 * Reads are local and synchronous underneath; mutations are calls to the primary, answered once
 * this replica has applied them.
 */
export class ReplicatedStore implements StateStore {
  private readonly replica = new MemoryStore();
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private ready: Promise<void> | undefined;
  private markReady: (() => void) | undefined;
  /** Calls made in one turn go to the primary as one IPC message (see coalescing). */
  private readonly outbox: (message: WorkerToPrimary) => void;

  constructor(
    private readonly channel: Channel<WorkerToPrimary, PrimaryToWorker>,
    private readonly options: ReplicatedStoreOptions,
  ) {
    this.outbox = coalescing<WorkerToPrimary>((messages) => channel.send(messages.length === 1 ? (messages[0] as WorkerToPrimary) : { ps: "batch", messages }));
    channel.onMessage((message) => this.receive(message));
  }


  /** Asks the primary for a snapshot; resolves once the replica holds it. */
  start(): Promise<void> {
    this.ready ??= new Promise<void>((resolve, reject) => {
      this.markReady = resolve;
      const timer = setTimeout(() => reject(new Error("no state snapshot from the primary")), this.options.callTimeoutMs);
      timer.unref();
      this.channel.send({ ps: "hello" });
    });
    return this.ready;
  }

  registerPeer(request: RegisterPeer): Promise<Registration> {
    return this.call("registerPeer", [request]) as Promise<Registration>;
  }
  unregisterPeer(fingerprint: string, connectionId: string): Promise<Departure | undefined> {
    return this.call("unregisterPeer", [fingerprint, connectionId]) as Promise<Departure | undefined>;
  }
  updateMeta(fingerprint: string, patch: Meta): Promise<void> {
    return this.call("updateMeta", [fingerprint, patch]) as Promise<void>;
  }
  joinNamespace(name: string, fingerprint: string, options: JoinOptions): Promise<JoinResult> {
    return this.call("joinNamespace", [name, fingerprint, options]) as Promise<JoinResult>;
  }
  leaveScope(name: string, fingerprint: string): Promise<void> {
    return this.call("leaveScope", [name, fingerprint]) as Promise<void>;
  }
  createRoom(roomId: string, owner: string, maxSize: number): Promise<RoomInfo> {
    return this.call("createRoom", [roomId, owner, maxSize]) as Promise<RoomInfo>;
  }
  joinRoom(roomId: string, fingerprint: string, listLimit: number): Promise<RoomJoinResult> {
    return this.call("joinRoom", [roomId, fingerprint, listLimit]) as Promise<RoomJoinResult>;
  }
  kick(roomId: string, owner: string, target: string): Promise<void> {
    return this.call("kick", [roomId, owner, target]) as Promise<void>;
  }
  requestMatch(ticket: MatchTicket): Promise<MatchOutcome> {
    return this.call("requestMatch", [ticket]) as Promise<MatchOutcome>;
  }
  cancelMatch(namespace: string, fingerprint: string): Promise<boolean> {
    return this.call("cancelMatch", [namespace, fingerprint]) as Promise<boolean>;
  }
  removeNode(nodeId: string): Promise<Departure[]> {
    return this.call("removeNode", [nodeId]) as Promise<Departure[]>;
  }

  resolvePeer(to: string): Promise<PeerRecord | undefined> {
    return this.replica.resolvePeer(to);
  }
  resolveTarget(from: string, to: string): Promise<PeerRecord> {
    return this.replica.resolveTarget(from, to);
  }
  listMembers(name: string, requester: string, limit: number): Promise<MemberPage> {
    return this.replica.listMembers(name, requester, limit);
  }
  isMember(name: string, fingerprint: string): Promise<boolean> {
    return this.replica.isMember(name, fingerprint);
  }
  scopeExists(name: string): Promise<boolean> {
    return this.replica.scopeExists(name);
  }
  sharesScope(a: string, b: string): Promise<boolean> {
    return this.replica.sharesScope(a, b);
  }
  roomInfo(roomId: string): Promise<RoomInfo> {
    return this.replica.roomInfo(roomId);
  }
  stats(): Promise<StoreStats> {
    return this.replica.stats();
  }

  /** Registered peers held by other workers (from the replica), counted against max_peers. */

  async close(): Promise<void> {
    for (const [id, pending] of this.pending) {
      clearTimeout(pending.timer);
      pending.reject(new ProtocolError(ErrorCode.Unavailable, "store closed"));
      this.pending.delete(id);
    }
  }

  private call(method: Mutation, args: unknown[]): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new ProtocolError(ErrorCode.Unavailable, `state store did not answer ${method} in time`));
      }, this.options.callTimeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.outbox({ ps: "call", id, method, args });
    });
  }

  private receive(message: PrimaryToWorker): void {
    switch (message.ps) {
      case "batch":
        for (const inner of message.messages) this.receive(inner);
        break;
      case "snapshot":
        this.replica.importSnapshot(message.state);
        this.markReady?.();
        break;
      case "apply":
        void this.applyLocally(message.method, message.args);
        break;
      case "reap":
      case "workers":
        break;
      case "result": {
        const pending = this.pending.get(message.id);
        if (pending === undefined) return;
        this.pending.delete(message.id);
        clearTimeout(pending.timer);
        if (message.ok) pending.resolve(message.value);
        else pending.reject(new ProtocolError(message.code as ErrorCode, message.message));
        break;
      }
    }
  }

  private async applyLocally(method: Mutation, args: unknown[]): Promise<void> {
    const fn = this.replica[method] as (...params: unknown[]) => Promise<unknown>;
    // The replica's state changes synchronously inside the call, in channel order.
    const value = await fn.apply(this.replica, args);
    if (method === "removeNode" && (value as Departure[]).length > 0) this.options.onDepartures?.(value as Departure[]);
  }
}

