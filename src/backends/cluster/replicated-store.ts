import {
  applyMessage,
  callMessage,
  exhaustive,
  type CallMessage,
  type Mutation,
  type MutationArgs,
  type MutationValue,
  type StoreReply,
  type StoreRequest,
} from "../../protocol/cluster-messages.ts";
import { ErrorCode, ProtocolError } from "../../protocol/errors.ts";
import type { Meta } from "../../protocol/requests.ts";
import { coalescing, withoutStack, type Sender } from "./channel.ts";
import { MemoryStore } from "../memory/memory-store.ts";
import { applyMutation, withoutListing } from "./mutation.ts";
import type {
  Ban,
  Departure,
  JoinOptions,
  JoinResult,
  KickBan,
  MatchOutcome,
  MatchTicket,
  MemberPage,
  PeerCaps,
  PeerDetails,
  PeerRecord,
  Registration,
  RegisterPeer,
  ResumedPeer,
  ResumePeer,
  RoomAdmission,
  RoomInfo,
  RoomJoinResult,
  StateStore,
  StoreStats,
} from "../state-store.ts";

export interface ReplicatedStoreOptions {
  /** How long a mutation may wait for the primary before failing with 503. */
  callTimeoutMs: number;
  /** Told about departures the primary decided (a dead worker's peers), so local peers can be told. */
  onDepartures?: (departures: Departure[]) => void;
}

interface Pending {
  /** Takes what the host's store returned for this call (the hello's: nothing). */
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
  /** The start's hello, which fails with a plain Error (start-up reports it), not a 503. */
  hello: boolean;
}

/**
 * A worker's view of the machine-wide state: a MemoryStore replica fed by the primary's StoreHost.
 * Reads are local and synchronous underneath; mutations are calls to the primary, answered once
 * this replica has applied them.
 *
 * Calls: `start()`'s hello and each mutation carry an id of this replica, expect exactly one
 * answer with it (a snapshot; for a mutation, its apply with the id, whose replay here gives the
 * value, or a result with the error) and give up after `callTimeoutMs` (503 for a mutation);
 * an answer that comes later is dropped. Once the primary is gone (`primaryGone`) or the store is
 * closed, every waiting call fails at once and every later one without being sent (503): nothing
 * waits on a primary that cannot answer. The worker's dispatcher hands this store every
 * StoreReply (`receive`).
 */
export class ReplicatedStore implements StateStore {
  private readonly replica = new MemoryStore();
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private ready: Promise<void> | undefined;
  /**
   * Set once no answer can come (closed, or the primary gone): what calls fail with from then on,
   * one error object for all of them (thousands of peers close at once then, each failure logged).
   */
  private refusal: { mutation: ProtocolError; hello: Error } | undefined;
  /** Set once the machine stops (machineStopping): mutations change this replica only. */
  private alone = false;
  /** Calls made in one go go to the primary as one message (see coalescing). */
  private readonly outbox: (message: CallMessage) => void;
  private readonly reportDepartures = (departures: Departure[]): void => {
    if (departures.length > 0) this.options.onDepartures?.(departures);
  };

  constructor(
    private readonly link: Sender<StoreRequest>,
    private readonly options: ReplicatedStoreOptions,
  ) {
    this.outbox = coalescing<CallMessage>((messages) => link.send(messages.length === 1 ? (messages[0] as CallMessage) : { ps: "batch", messages }));
  }

  /** Asks the primary for a snapshot; resolves once the replica holds it. */
  start(): Promise<void> {
    this.ready ??= new Promise<void>((resolve, reject) => {
      const id = this.nextId++;
      if (this.wait(id, undefined, () => resolve(), reject)) this.link.send({ ps: "hello", id });
    });
    return this.ready;
  }

  registerPeer(request: RegisterPeer): Promise<Registration> {
    return this.call("registerPeer", [request]);
  }
  unregisterPeer(fingerprint: string, connectionId: string): Promise<Departure | undefined> {
    return this.call("unregisterPeer", [fingerprint, connectionId]);
  }
  updateMeta(fingerprint: string, patch: Meta): Promise<void> {
    return this.call("updateMeta", [fingerprint, patch]);
  }
  joinNamespace(name: string, fingerprint: string, options: JoinOptions): Promise<JoinResult> {
    return this.call("joinNamespace", [name, fingerprint, options]);
  }
  leaveScope(name: string, fingerprint: string): Promise<void> {
    return this.call("leaveScope", [name, fingerprint]);
  }
  createRoom(roomId: string, owner: string, maxSize: number, caps?: PeerCaps): Promise<RoomInfo> {
    return this.call("createRoom", [roomId, owner, maxSize, caps]);
  }
  joinRoom(roomId: string, fingerprint: string, listLimit: number, admission?: RoomAdmission): Promise<RoomJoinResult> {
    return this.call("joinRoom", [roomId, fingerprint, listLimit, admission]);
  }
  kick(roomId: string, owner: string, target: string, ban?: KickBan): Promise<void> {
    return this.call("kick", [roomId, owner, target, ban]);
  }
  requestMatch(ticket: MatchTicket): Promise<MatchOutcome> {
    return this.call("requestMatch", [ticket]);
  }
  cancelMatch(namespace: string, fingerprint: string): Promise<boolean> {
    return this.call("cancelMatch", [namespace, fingerprint]);
  }
  removeNode(nodeId: string): Promise<Departure[]> {
    return this.call("removeNode", [nodeId]);
  }
  addBan(ban: Ban, now: number): Promise<void> {
    return this.call("addBan", [ban, now]);
  }
  removeBan(id: string, now: number): Promise<boolean> {
    return this.call("removeBan", [id, now]);
  }
  suspendPeer(fingerprint: string, connectionId: string, until: number): Promise<boolean> {
    return this.call("suspendPeer", [fingerprint, connectionId, until]);
  }
  resumePeer(request: ResumePeer): Promise<ResumedPeer | undefined> {
    return this.call("resumePeer", [request]);
  }
  /**
   * Asks the primary only when the replica has one of the targets suspended: kicks and matches
   * ask for every target, nearly always live. (A suspension this replica has not applied yet is
   * missed, as resolveTarget misses it.)
   */
  bufferMessage(targets: readonly string[], message: string, limit: number): Promise<string[]> {
    if (!this.replica.anySuspended(targets)) return Promise.resolve([]);
    return this.call("bufferMessage", [targets, message, limit]);
  }
  /** Asks the primary only when the replica has a suspension ended by `now`: every process sweeps often. */
  expireSuspended(now: number): Promise<Departure[]> {
    if (!this.replica.anyExpired(now)) return Promise.resolve([]);
    return this.call("expireSuspended", [now]);
  }

  resolvePeer(to: string): Promise<PeerRecord | undefined> {
    return this.replica.resolvePeer(to);
  }
  resolveTarget(from: string, to: string): Promise<PeerRecord> {
    return this.replica.resolveTarget(from, to);
  }
  peerDetails(fingerprint: string): Promise<PeerDetails | undefined> {
    return this.replica.peerDetails(fingerprint);
  }
  listMembers(name: string, requester: string | null, limit: number, offset?: number): Promise<MemberPage> {
    return this.replica.listMembers(name, requester, limit, offset);
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
  listBans(now: number): Promise<Ban[]> {
    return this.replica.listBans(now);
  }
  stats(): Promise<StoreStats> {
    return this.replica.stats();
  }

  /** Fails every call still waiting for the primary, and every later one. Safe to call twice. */
  async close(): Promise<void> {
    this.refuse("store closed");
  }

  /**
   * The primary stops the whole machine, and the state with it: from now on a mutation changes this
   * replica only, at once, and is not sent. Each worker's stop unregisters its peers and tells their
   * namespaces; the replica keeps what it tells consistent, while the primary, which no longer has
   * anyone to keep the state for, is spared a round trip and a replay on every replica per peer
   * (for a machine holding many peers, more than shutdown_timeout). Calls already sent are answered
   * as usual.
   */
  machineStopping(): void {
    this.alone = true;
  }

  /**
   * The channel to the primary closed: every call waiting for it fails now (503), every later one
   * at once. Reads go on from the replica as it is.
   */
  primaryGone(): void {
    this.refuse("the cluster primary is gone");
  }

  private refuse(reason: string): void {
    const refusal = (this.refusal ??= {
      mutation: withoutStack(new ProtocolError(ErrorCode.Unavailable, reason)),
      hello: withoutStack(new Error(`no state snapshot from the primary: ${reason}`)),
    });
    for (const [id, pending] of this.pending) {
      clearTimeout(pending.timer);
      pending.reject(pending.hello ? refusal.hello : refusal.mutation);
      this.pending.delete(id);
    }
  }

  /** Handles one message from the primary's StoreHost (checked by the worker's guard), in channel order. */
  receive(message: StoreReply): void {
    switch (message.ps) {
      case "batch":
        for (const inner of message.messages) this.receive(inner);
        break;
      case "snapshot": {
        const pending = this.settle(message.id);
        if (pending === undefined) return;
        this.replica.importSnapshot(message.state);
        pending.resolve(undefined);
        break;
      }
      case "apply": {
        // The replica's state changes synchronously inside the call, in channel order. Another
        // replica's call is replayed for its change alone.
        const applied = applyMutation(this.replica, message.id === undefined ? withoutListing(message) : message);
        if (message.method === "removeNode") void (applied as Promise<Departure[]>).then(this.reportDepartures);
        // This replica's own call: what its replay returns is the answer (see ApplyMessage).
        const pending = message.id === undefined ? undefined : this.settle(message.id);
        if (pending !== undefined) applied.then(pending.resolve, pending.reject);
        break;
      }
      case "result": {
        const pending = this.settle(message.id);
        if (pending === undefined) return;
        if (message.ok) pending.resolve(message.value);
        else pending.reject(new ProtocolError(message.code as ErrorCode, message.message));
        break;
      }
      default:
        exhaustive(message);
    }
  }

  private call<K extends Mutation>(method: K, args: MutationArgs[K]): Promise<MutationValue[K]> {
    if (this.alone && this.refusal === undefined) return applyMutation(this.replica, applyMessage<Mutation>(method, args)) as Promise<MutationValue[K]>;
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      // The host answers with what the same method of its store returned.
      if (this.wait(id, method, resolve as (value: unknown) => void, reject)) this.outbox(callMessage<Mutation>(id, method, args));
    });
  }

  /**
   * Waits for the one answer to call `id` (a mutation, or the hello when `method` is undefined), for
   * callTimeoutMs at most. Returns false, having rejected, when no answer can come: send nothing.
   */
  private wait(id: number, method: Mutation | undefined, resolve: (value: unknown) => void, reject: (error: Error) => void): boolean {
    if (this.refusal !== undefined) {
      reject(method === undefined ? this.refusal.hello : this.refusal.mutation);
      return false;
    }
    const timer = setTimeout(() => {
      this.pending.delete(id);
      reject(
        method === undefined
          ? new Error("no state snapshot from the primary")
          : new ProtocolError(ErrorCode.Unavailable, `state store did not answer ${method} in time`),
      );
    }, this.options.callTimeoutMs);
    this.pending.set(id, { resolve, reject, timer, hello: method === undefined });
    return true;
  }

  /** Takes the call an answer is for; undefined when it is no longer waited for (timed out, closed). */
  private settle(id: number): Pending | undefined {
    const pending = this.pending.get(id);
    if (pending === undefined) return undefined;
    this.pending.delete(id);
    clearTimeout(pending.timer);
    return pending;
  }
}
