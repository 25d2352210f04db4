import TinyQueue from "tinyqueue";
import { ErrorCode, ProtocolError, badRequest } from "../../protocol/errors.ts";
import { canonicalCriteria, mergeMeta, type Meta } from "../../protocol/requests.ts";
import {
  capReached,
  identityKind,
  KICKED,
  type Ban,
  type Departure,
  type JoinOptions,
  type JoinResult,
  type KickBan,
  type MatchOutcome,
  type MatchTicket,
  type MemberInfo,
  type MemberPage,
  type PeerCaps,
  type PeerDetails,
  type PeerRecord,
  type Registration,
  type RegisterPeer,
  type ResumedPeer,
  type ResumedScope,
  type ResumePeer,
  type RoomAdmission,
  type RoomInfo,
  type RoomJoinResult,
  type StateStore,
  type StoreStats,
} from "../state-store.ts";
import { pickGroup } from "./match-group.ts";
import { appTypeIn, NO_SCOPES, scopeCount, scopeEntries, scopeNames, scopesOf, withoutScope, withScope, type PeerScopes } from "./peer-scopes.ts";
import { withFields } from "../../internals/object-copy.ts";

interface Peer extends PeerRecord {
  meta: Meta;
  /** RegisterPeer.verified. */
  verified: boolean;
  /** The scopes it is in, with the app_type it joined each with. */
  scopes: PeerScopes;
  /**
   * Namespace -> the peer's waiting ticket there; undefined while it has none, as most peers do:
   * an empty Map costs more than the rest of a peer's record, and every worker of a cluster keeps
   * a record of every peer.
   */
  tickets: Map<string, WaitingTicket> | undefined;
  /** RegisterPeer.resumeHash; "" when the registration cannot be resumed. */
  resumeHash: string;
  /** Set while the peer is suspended (suspendPeer). */
  suspension: Suspension | undefined;
}

/** A suspended peer's state: when its grace ends and what waits for it. */
export interface Suspension {
  /** ms since the epoch, on the callers' clocks. */
  until: number;
  /** bufferMessage's messages, oldest first. */
  messages: string[];
  /** Messages dropped from the front of `messages` past the buffer's limit. */
  missed: number;
}

/** One suspension's end, as the expiry queue orders it. */
interface Expiry {
  readonly until: number;
  readonly fingerprint: string;
}

/**
 * Ordered by end, then fingerprint: every replica of a cluster expires the same peers in the same
 * order, whatever order its snapshot gave them.
 */
const newExpiryQueue = (): TinyQueue<Expiry> =>
  new TinyQueue<Expiry>([], (a, b) => a.until - b.until || (a.fingerprint < b.fingerprint ? -1 : a.fingerprint > b.fingerprint ? 1 : 0));

/** What a queue keeps of a waiting ticket, beside the fingerprint in its queue. */
export interface WaitingTicket {
  /** The queue's key: namespace, group size, criteria and openness. */
  queue: string;
  /** MatchTicket.open: the ticket stays when its peer leaves a scope of that name. */
  open: boolean;
  /** MatchTicket.avoid. */
  avoid: readonly string[];
}

/** JSON form of a MemoryStore's whole state. */
export interface MemorySnapshot {
  peers: (PeerRecord & {
    meta: Meta;
    verified: boolean;
    scopes: [string, string][];
    tickets: [string, WaitingTicket][];
    resumeHash?: string;
    suspension?: Suspension | undefined;
  })[];
  scopes: { name: string; members: [string, number][]; room: { owner: string; maxSize: number } | undefined; kicks?: [string, number][] }[];
  queues: [string, string[]][];
  joinSeq: number;
  bans: Ban[];
}

interface Scope {
  name: string;
  /**
   * Fingerprint -> join seq (see JoinResult.seq). Insertion order is join order: oldest first,
   * which gives listing order and owner succession.
   */
  members: Map<string, number>;
  room: { owner: string; maxSize: number } | undefined;
  /** A room's kick bans: fingerprint -> when its ban ends (KickBan.until); undefined until the first. */
  kicks: Map<string, number> | undefined;
}

/**
 * Holds all state in this process. Every method is atomic because it runs to completion on one
 * thread; the promises only satisfy the StateStore contract shared with remote implementations.
 */
export class MemoryStore implements StateStore {
  private readonly peers = new Map<string, Peer>();
  private readonly aliases = new Map<string, string>();
  private readonly scopes = new Map<string, Scope>();
  /** Queue key -> fingerprints waiting, oldest first. */
  private readonly queues = new Map<string, Set<string>>();
  /** identityKind -> registered peers of that kind; kinds without peers are deleted. */
  private readonly kinds = new Map<string, number>();
  /** The last join seq handed out, across all scopes. */
  private joinSeq = 0;
  /** Ban id -> ban, oldest first; those expired by the last mutation's `now` are gone. */
  private readonly bans = new Map<string, Ban>();
  /**
   * When each suspension ends, earliest first: expireSuspended and anyExpired look at the ended
   * ones only (a cluster replays every expiry on every replica, and a mass disconnect suspends
   * thousands of peers at once). An entry whose peer was resumed, removed or suspended anew since
   * is stale: it is dropped when it comes up (nextExpiry).
   */
  private expiries = newExpiryQueue();
  /**
   * One string per node id for all its peers' records: the ids come with every registration, and a
   * cluster worker's replica gets each as a string of its own from the IPC message.
   */
  private readonly nodeIds = new Map<string, string>();

  async registerPeer(request: RegisterPeer): Promise<Registration> {
    return this.registerPeerSync(request);
  }

  /** Whether `fingerprint` may take `alias`: nobody holds it, or the peer itself does as its alias now (`ownAlias`). */
  private aliasFree(alias: string, fingerprint: string, ownAlias: string | undefined): boolean {
    const holder = this.aliases.get(alias);
    return holder === undefined || (holder === fingerprint && alias === ownAlias);
  }

  registerPeerSync(request: RegisterPeer): Registration {
    const existing = this.peers.get(request.fingerprint);
    if (existing?.verified === true && !request.verified) throw new ProtocolError(ErrorCode.Conflict, HELD_BY_VERIFIED);
    const ownAlias = existing?.alias;
    let alias: string | undefined;
    if (request.alias !== undefined) {
      if (!this.aliasFree(request.alias, request.fingerprint, ownAlias)) throw new ProtocolError(ErrorCode.Conflict, "alias is taken");
      alias = request.alias;
    } else {
      // A loop, not a closure for find: tsx names each closure as it is made, a cost per registration.
      for (const candidate of request.aliasCandidates) {
        if (this.aliasFree(candidate, request.fingerprint, ownAlias)) {
          alias = candidate;
          break;
        }
      }
      if (alias === undefined) throw new ProtocolError(ErrorCode.Conflict, "no free alias could be generated");
    }
    let replaced: Registration["replaced"];
    if (existing !== undefined) {
      replaced = withFields(this.removePeer(existing), { connectionId: existing.connectionId });
    }
    this.peers.set(request.fingerprint, {
      fingerprint: request.fingerprint,
      alias,
      connectionId: request.connectionId,
      nodeId: this.internNodeId(request.nodeId),
      meta: ownMeta(request.meta),
      verified: request.verified,
      scopes: NO_SCOPES,
      tickets: undefined,
      resumeHash: request.resumeHash ?? "",
      suspension: undefined,
    });
    this.countKind(request.fingerprint, 1);
    this.aliases.set(alias, request.fingerprint);
    return replaced === undefined ? { alias } : { alias, replaced };
  }

  async unregisterPeer(fingerprint: string, connectionId: string): Promise<Departure | undefined> {
    const peer = this.peers.get(fingerprint);
    if (peer === undefined || peer.connectionId !== connectionId) return undefined;
    return this.removePeer(peer);
  }

  async resolvePeer(to: string): Promise<PeerRecord | undefined> {
    const peer = this.resolveSync(to);
    return peer === undefined ? undefined : recordOf(peer);
  }

  async resolveTarget(from: string, to: string): Promise<PeerRecord> {
    const target = this.resolveSync(to);
    if (target === undefined) throw new ProtocolError(ErrorCode.NotFound, "peer not found");
    if (target.fingerprint === from) throw badRequest("cannot send to yourself");
    const sender = this.peers.get(from);
    if (sender === undefined || !this.sharesAny(sender, target)) throw new ProtocolError(ErrorCode.Forbidden, "no shared namespace");
    return recordOf(target);
  }

  async suspendPeer(fingerprint: string, connectionId: string, until: number): Promise<boolean> {
    const peer = this.peers.get(fingerprint);
    if (peer === undefined || peer.connectionId !== connectionId || peer.suspension !== undefined) return false;
    peer.suspension = { until, messages: [], missed: 0 };
    this.expiries.push({ until, fingerprint });
    return true;
  }

  async resumePeer(request: ResumePeer): Promise<ResumedPeer | undefined> {
    const peer = this.peers.get(request.fingerprint);
    if (peer === undefined || request.resumeHash === "" || peer.resumeHash !== request.resumeHash) return undefined;
    if (peer.verified && !request.verified) throw new ProtocolError(ErrorCode.Conflict, HELD_BY_VERIFIED);
    const suspension = peer.suspension;
    if (suspension !== undefined && suspension.until <= request.now) return undefined;
    const replaced = suspension === undefined ? peer.connectionId : undefined;
    peer.connectionId = request.connectionId;
    peer.nodeId = this.internNodeId(request.nodeId);
    peer.verified = request.verified;
    peer.suspension = undefined;
    const scopes: ResumedScope[] = [];
    for (const [name, appType] of scopeEntries(peer.scopes)) scopes.push({ name, appType, roomSize: this.scopes.get(name)?.room?.maxSize });
    const resumed: ResumedPeer = { alias: peer.alias, meta: peer.meta, scopes, messages: suspension?.messages ?? [], missed: suspension?.missed ?? 0 };
    if (replaced !== undefined) resumed.replaced = replaced;
    return resumed;
  }

  async bufferMessage(targets: readonly string[], message: string, limit: number): Promise<string[]> {
    return this.bufferMessageSync(targets, message, limit);
  }

  bufferMessageSync(targets: readonly string[], message: string, limit: number): string[] {
    const buffered: string[] = [];
    for (const fingerprint of targets) {
      const suspension = this.peers.get(fingerprint)?.suspension;
      if (suspension === undefined) continue;
      suspension.messages.push(message);
      const excess = suspension.messages.length - limit;
      if (excess > 0) {
        suspension.messages.splice(0, excess);
        suspension.missed += excess;
      }
      buffered.push(fingerprint);
    }
    return buffered;
  }

  async expireSuspended(now: number): Promise<Departure[]> {
    const departures: Departure[] = [];
    for (let next = this.nextExpiry(); next !== undefined && next.until <= now; next = this.nextExpiry()) {
      this.expiries.pop();
      departures.push(this.removePeer(this.peers.get(next.fingerprint) as Peer));
    }
    return departures;
  }

  /** True when one of `fingerprints` is suspended (read without a change, for a replica's callers). */
  anySuspended(fingerprints: readonly string[]): boolean {
    for (const fingerprint of fingerprints) if (this.peers.get(fingerprint)?.suspension !== undefined) return true;
    return false;
  }

  /** True when a suspension ended at or before `now`: expireSuspended would remove someone. */
  anyExpired(now: number): boolean {
    const next = this.nextExpiry();
    return next !== undefined && next.until <= now;
  }

  /** The suspension that ends first, after dropping the stale entries ahead of it. */
  private nextExpiry(): Expiry | undefined {
    for (let next = this.expiries.peek(); next !== undefined; next = this.expiries.peek()) {
      if (this.peers.get(next.fingerprint)?.suspension?.until === next.until) return next;
      this.expiries.pop();
    }
    return undefined;
  }

  async peerDetails(fingerprint: string): Promise<PeerDetails | undefined> {
    const peer = this.peers.get(fingerprint);
    if (peer === undefined) return undefined;
    const scopes = scopeEntries(peer.scopes)
      .map(([name, appType]) => ({ name, room: this.scopes.get(name)?.room !== undefined, app_type: appType }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return { fingerprint, alias: peer.alias, connectionId: peer.connectionId, nodeId: peer.nodeId, meta: peer.meta, verified: peer.verified, scopes };
  }

  private resolveSync(to: string): Peer | undefined {
    const byFingerprint = this.peers.get(to);
    if (byFingerprint !== undefined) return byFingerprint;
    const fingerprint = this.aliases.get(to);
    return fingerprint === undefined ? undefined : this.peers.get(fingerprint);
  }

  async updateMeta(fingerprint: string, patch: Meta): Promise<void> {
    const peer = this.requirePeer(fingerprint);
    peer.meta = mergeMeta(peer.meta, patch);
  }

  async joinNamespace(name: string, fingerprint: string, options: JoinOptions): Promise<JoinResult> {
    const peer = this.requirePeer(fingerprint);
    const existing = this.scopes.get(name);
    if (existing?.room !== undefined) throw new ProtocolError(ErrorCode.Forbidden, "this name is a private room: use join_room");
    this.checkScopeCap(peer, name, options.caps);
    if (options.meta !== undefined) peer.meta = mergeMeta(peer.meta, options.meta);
    const scope = existing ?? this.newScope(name, undefined);
    return this.addMember(scope, peer, options.appType, options.listLimit);
  }

  async leaveScope(name: string, fingerprint: string): Promise<void> {
    const peer = this.requirePeer(fingerprint);
    const scope = this.scopes.get(name);
    if (scope === undefined || !scope.members.has(fingerprint)) throw new ProtocolError(ErrorCode.NotFound, "not a member");
    this.removeMember(scope, peer);
  }

  async listMembers(name: string, requester: string | null, limit: number, offset = 0): Promise<MemberPage> {
    const scope = this.scopes.get(name);
    if (scope === undefined) return { peers: [], total: 0 };
    if (scope.room !== undefined && requester !== null && !scope.members.has(requester)) {
      throw new ProtocolError(ErrorCode.Forbidden, "rooms are visible to their members only");
    }
    return this.page(scope, limit, offset);
  }

  async isMember(name: string, fingerprint: string): Promise<boolean> {
    return this.scopes.get(name)?.members.has(fingerprint) ?? false;
  }

  async scopeExists(name: string): Promise<boolean> {
    return this.scopes.has(name);
  }

  async sharesScope(a: string, b: string): Promise<boolean> {
    const first = this.peers.get(a);
    const second = this.peers.get(b);
    return first !== undefined && second !== undefined && this.sharesAny(first, second);
  }

  async createRoom(roomId: string, owner: string, maxSize: number, caps?: PeerCaps): Promise<RoomInfo> {
    const peer = this.requirePeer(owner);
    if (this.scopes.has(roomId)) throw new ProtocolError(ErrorCode.Conflict, "a room or namespace with this id exists");
    if (caps?.maxRooms !== undefined && this.roomsOwnedBy(peer) >= caps.maxRooms) throw capReached("max_rooms_per_peer", caps.maxRooms);
    this.checkScopeCap(peer, roomId, caps);
    const scope = this.newScope(roomId, { owner, maxSize });
    this.addMember(scope, peer, "", 0);
    return roomInfoOf(scope);
  }

  async joinRoom(roomId: string, fingerprint: string, listLimit: number, admission?: RoomAdmission): Promise<RoomJoinResult> {
    const peer = this.requirePeer(fingerprint);
    const scope = this.requireRoom(roomId);
    if (!scope.members.has(fingerprint)) {
      if (admission !== undefined && (scope.kicks?.get(fingerprint) ?? -Infinity) > admission.now) throw new ProtocolError(ErrorCode.Forbidden, KICKED);
      if (scope.members.size >= (scope.room?.maxSize ?? 0)) throw new ProtocolError(ErrorCode.TooMany, "room is full");
      this.checkScopeCap(peer, roomId, admission?.caps);
    }
    return withFields(this.addMember(scope, peer, "", listLimit), { maxSize: scope.room?.maxSize ?? 0 });
  }

  async roomInfo(roomId: string): Promise<RoomInfo> {
    return roomInfoOf(this.requireRoom(roomId));
  }

  async kick(roomId: string, owner: string, target: string, ban?: KickBan): Promise<void> {
    const scope = this.requireRoom(roomId);
    if (scope.room?.owner !== owner) throw new ProtocolError(ErrorCode.Forbidden, "only the room owner can kick");
    if (target === owner) throw badRequest("the owner cannot kick itself; use leave");
    const peer = this.peers.get(target);
    if (peer === undefined || !scope.members.has(target)) throw new ProtocolError(ErrorCode.NotFound, "peer is not in the room");
    this.removeMember(scope, peer);
    if (ban !== undefined && ban.until > ban.now && this.scopes.get(roomId) === scope) {
      const kicks = (scope.kicks ??= new Map());
      // Forgotten once expired, so a room keeps only the bans of the last kick_ban's kicks.
      for (const [fingerprint, until] of kicks) if (until <= ban.now) kicks.delete(fingerprint);
      kicks.set(target, ban.until);
    }
  }

  async requestMatch(ticket: MatchTicket): Promise<MatchOutcome> {
    const peer = this.requirePeer(ticket.fingerprint);
    const open = ticket.open === true;
    if (!open && !this.isIn(peer, ticket.namespace)) throw new ProtocolError(ErrorCode.Forbidden, "join the namespace before matching");
    const key = `${ticket.namespace}\u0000${ticket.groupSize}\u0000${canonicalCriteria(ticket.criteria)}${open ? "\u0000open" : ""}`;
    const avoid = ticket.avoid ?? [];
    // Everything is decided before anything changes, so a refusal leaves the earlier ticket in place.
    const chosen = pickGroup(ticket.fingerprint, avoid, ticket.groupSize - 1, this.queues.get(key) ?? [], (fingerprint) =>
      this.peers.get(fingerprint)?.tickets?.get(ticket.namespace)?.avoid ?? [],
    );
    if (chosen === undefined) {
      const maxTickets = ticket.caps?.maxTickets;
      const tickets = peer.tickets;
      if (maxTickets !== undefined && tickets !== undefined && tickets.size - (tickets.has(ticket.namespace) ? 1 : 0) >= maxTickets) {
        throw capReached("max_tickets_per_peer", maxTickets);
      }
      this.dropTicket(peer, ticket.namespace);
      let queue = this.queues.get(key);
      if (queue === undefined) {
        queue = new Set();
        this.queues.set(key, queue);
      }
      queue.add(peer.fingerprint);
      (peer.tickets ??= new Map()).set(ticket.namespace, { queue: key, open, avoid: [...avoid] });
      return { status: "waiting" };
    }
    if (ticket.groupRoom !== undefined && this.scopes.has(ticket.groupRoom)) {
      throw new ProtocolError(ErrorCode.Conflict, "a room or namespace with the group room's id exists");
    }
    const group = [...chosen.map((fingerprint) => this.requirePeer(fingerprint)), peer];
    const peers = group.map((member) => memberInfo(member, ticket.namespace));
    for (const member of group) this.dropTicket(member, ticket.namespace);
    if (ticket.groupRoom !== undefined) {
      // As if the oldest ticket's peer created the room and the others joined it in ticket order.
      const owner = group[0] ?? peer;
      const room = this.newScope(ticket.groupRoom, { owner: owner.fingerprint, maxSize: ticket.groupSize });
      for (const member of group) this.addMember(room, member, "", 0);
    }
    return { status: "matched", sessionId: ticket.sessionId, peers };
  }

  async cancelMatch(namespace: string, fingerprint: string): Promise<boolean> {
    return this.dropTicket(this.requirePeer(fingerprint), namespace);
  }

  async removeNode(nodeId: string): Promise<Departure[]> {
    const departures: Departure[] = [];
    for (const peer of [...this.peers.values()]) {
      // A suspended peer belongs to no node any more: its grace runs out wherever it started.
      if (peer.nodeId === nodeId && peer.suspension === undefined) departures.push(this.removePeer(peer));
    }
    this.nodeIds.delete(nodeId);
    return departures;
  }

  async addBan(ban: Ban, now: number): Promise<void> {
    this.forgetExpiredBans(now);
    this.bans.delete(ban.id);
    this.bans.set(ban.id, { ...ban });
  }

  async listBans(now: number): Promise<Ban[]> {
    const active: Ban[] = [];
    for (const ban of this.bans.values()) if (ban.expiresAt > now) active.push({ ...ban });
    return active.sort(banOrder);
  }

  async removeBan(id: string, now: number): Promise<boolean> {
    this.forgetExpiredBans(now);
    return this.bans.delete(id);
  }

  async stats(): Promise<StoreStats> {
    const counts: [string, number][] = [];
    for (const scope of this.scopes.values()) {
      if (scope.room === undefined) counts.push([scope.name, scope.members.size]);
    }
    // fromEntries defines each key: a namespace named "__proto__" is listed like any other.
    return { totalPeers: this.peers.size, namespaces: Object.fromEntries(counts), peersByKind: Object.fromEntries(this.kinds) };
  }

  async close(): Promise<void> {
    this.peers.clear();
    this.aliases.clear();
    this.scopes.clear();
    this.queues.clear();
    this.kinds.clear();
    this.bans.clear();
    this.expiries = newExpiryQueue();
    this.nodeIds.clear();
  }

  /** The whole state as plain JSON, for seeding a replica. */
  exportSnapshot(): MemorySnapshot {
    return {
      peers: [...this.peers.values()].map((peer) => ({
        ...peer,
        scopes: scopeEntries(peer.scopes),
        tickets: [...(peer.tickets ?? [])],
        suspension: peer.suspension === undefined ? undefined : { ...peer.suspension, messages: [...peer.suspension.messages] },
      })),
      scopes: [...this.scopes.values()].map((scope) => ({
        name: scope.name,
        members: [...scope.members],
        room: scope.room,
        ...(scope.kicks === undefined ? {} : { kicks: [...scope.kicks] }),
      })),
      queues: [...this.queues].map(([key, queue]) => [key, [...queue]]),
      joinSeq: this.joinSeq,
      bans: [...this.bans.values()],
    };
  }

  /** Replaces the whole state with a snapshot taken by exportSnapshot. */
  importSnapshot(snapshot: MemorySnapshot): void {
    void this.close();
    for (const peer of snapshot.peers) {
      const tickets =
        peer.tickets.length === 0 ? undefined : new Map(peer.tickets.map(([namespace, ticket]) => [namespace, { ...ticket, avoid: [...ticket.avoid] }]));
      const suspension = peer.suspension === undefined ? undefined : { ...peer.suspension, messages: [...peer.suspension.messages] };
      this.peers.set(peer.fingerprint, { ...peer, nodeId: this.internNodeId(peer.nodeId), scopes: scopesOf(peer.scopes), tickets, resumeHash: peer.resumeHash ?? "", suspension });
      if (suspension !== undefined) this.expiries.push({ until: suspension.until, fingerprint: peer.fingerprint });
      this.aliases.set(peer.alias, peer.fingerprint);
      this.countKind(peer.fingerprint, 1);
    }
    for (const scope of snapshot.scopes) {
      const room = scope.room === undefined ? undefined : { ...scope.room };
      this.scopes.set(scope.name, { name: scope.name, members: new Map(scope.members), room, kicks: scope.kicks === undefined ? undefined : new Map(scope.kicks) });
    }
    for (const [key, queue] of snapshot.queues) this.queues.set(key, new Set(queue));
    this.joinSeq = snapshot.joinSeq;
    for (const ban of snapshot.bans) this.bans.set(ban.id, { ...ban });
  }

  /** Whether `peer` is in scope `name`. */
  private isIn(peer: Peer, name: string): boolean {
    return this.scopes.get(name)?.members.has(peer.fingerprint) === true;
  }

  /** Whether the two peers are in a scope together: the smaller list is walked, the other peer looked up in each scope's members. */
  private sharesAny(a: Peer, b: Peer): boolean {
    const [few, other] = a.scopes.length <= b.scopes.length ? [a, b] : [b, a];
    for (let i = 0; i < few.scopes.length; i += 2) if (this.scopes.get(few.scopes[i] as string)?.members.has(other.fingerprint) === true) return true;
    return false;
  }

  private requirePeer(fingerprint: string): Peer {
    const peer = this.peers.get(fingerprint);
    if (peer === undefined) throw new ProtocolError(ErrorCode.NotFound, "peer is not registered");
    return peer;
  }

  /** 429 when the peer would enter scope `name` while in `caps.maxScopes` scopes already; a scope it is in passes. */
  private checkScopeCap(peer: Peer, name: string, caps: PeerCaps | undefined): void {
    const max = caps?.maxScopes;
    if (max !== undefined && scopeCount(peer.scopes) >= max && !this.isIn(peer, name)) throw capReached("max_scopes_per_peer", max);
  }

  private requireRoom(roomId: string): Scope {
    const scope = this.scopes.get(roomId);
    if (scope?.room === undefined) throw new ProtocolError(ErrorCode.NotFound, "no such room");
    return scope;
  }

  private newScope(name: string, room: Scope["room"]): Scope {
    const scope: Scope = { name, members: new Map(), room, kicks: undefined };
    this.scopes.set(name, scope);
    return scope;
  }

  /** Rooms whose owner the peer is: only scopes it is in can be, so no walk over every room. */
  private roomsOwnedBy(peer: Peer): number {
    let owned = 0;
    for (const name of scopeNames(peer.scopes)) if (this.scopes.get(name)?.room?.owner === peer.fingerprint) owned++;
    return owned;
  }

  private addMember(scope: Scope, peer: Peer, appType: string, listLimit: number): JoinResult {
    let seq = scope.members.get(peer.fingerprint);
    const added = seq === undefined;
    if (seq === undefined) {
      seq = ++this.joinSeq;
      scope.members.set(peer.fingerprint, seq);
      peer.scopes = withScope(peer.scopes, scope.name, appType);
    }
    return { added, member: memberInfo(peer, scope.name), seq, ...this.page(scope, listLimit) };
  }

  private page(scope: Scope, limit: number, offset = 0): MemberPage {
    const peers: MemberInfo[] = [];
    let skipped = 0;
    for (const fingerprint of scope.members.keys()) {
      if (peers.length >= limit) break;
      if (skipped < offset) {
        skipped++;
        continue;
      }
      const peer = this.peers.get(fingerprint);
      if (peer !== undefined) peers.push(memberInfo(peer, scope.name));
    }
    return { peers, total: scope.members.size };
  }

  private removeMember(scope: Scope, peer: Peer): void {
    scope.members.delete(peer.fingerprint);
    peer.scopes = withoutScope(peer.scopes, scope.name);
    if (peer.tickets?.get(scope.name)?.open === false) this.dropTicket(peer, scope.name);
    if (scope.members.size === 0) {
      this.scopes.delete(scope.name);
    } else if (scope.room !== undefined && scope.room.owner === peer.fingerprint) {
      // Ownership passes to the member who joined earliest: the first in insertion order.
      const next = scope.members.keys().next();
      if (!next.done) scope.room.owner = next.value;
    }
  }

  private removePeer(peer: Peer): Departure {
    const scopes = scopeNames(peer.scopes);
    for (const name of scopes) {
      const scope = this.scopes.get(name);
      if (scope !== undefined) this.removeMember(scope, peer);
    }
    if (peer.tickets !== undefined) for (const namespace of [...peer.tickets.keys()]) this.dropTicket(peer, namespace);
    this.peers.delete(peer.fingerprint);
    this.countKind(peer.fingerprint, -1);
    if (this.aliases.get(peer.alias) === peer.fingerprint) this.aliases.delete(peer.alias);
    return { fingerprint: peer.fingerprint, scopes };
  }

  private dropTicket(peer: Peer, namespace: string): boolean {
    const tickets = peer.tickets;
    const ticket = tickets?.get(namespace);
    if (tickets === undefined || ticket === undefined) return false;
    tickets.delete(namespace);
    if (tickets.size === 0) peer.tickets = undefined;
    const queue = this.queues.get(ticket.queue);
    queue?.delete(peer.fingerprint);
    if (queue?.size === 0) this.queues.delete(ticket.queue);
    return true;
  }

  private forgetExpiredBans(now: number): void {
    for (const [id, ban] of this.bans) if (ban.expiresAt <= now) this.bans.delete(id);
  }

  private internNodeId(nodeId: string): string {
    const known = this.nodeIds.get(nodeId);
    if (known !== undefined) return known;
    this.nodeIds.set(nodeId, nodeId);
    return nodeId;
  }

  private countKind(fingerprint: string, delta: 1 | -1): void {
    const kind = identityKind(fingerprint);
    const count = (this.kinds.get(kind) ?? 0) + delta;
    if (count > 0) this.kinds.set(kind, count);
    else this.kinds.delete(kind);
  }
}

/** What a peer registered without meta holds: one object for all of them (meta is replaced on change, never changed in place). */
const NO_META: Meta = Object.freeze({});

/** A registration's meta as the store keeps it: its own copy, or the shared empty one. */
function ownMeta(meta: Meta): Meta {
  for (const _key in meta) return { ...meta };
  return NO_META;
}

/** The refusal of an unverified register of a fingerprint a verified connection holds. */
const HELD_BY_VERIFIED = "this key is held by a verified connection: only a signed register can replace it";

/** Oldest first: by createdAt, then by id. */
function banOrder(a: Ban, b: Ban): number {
  return a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/** What resolvePeer and resolveTarget tell of a peer. */
function recordOf(peer: Peer): PeerRecord {
  const record: PeerRecord = { fingerprint: peer.fingerprint, alias: peer.alias, connectionId: peer.connectionId, nodeId: peer.nodeId };
  if (peer.suspension !== undefined) record.suspended = true;
  return record;
}

function memberInfo(peer: Peer, scope: string): MemberInfo {
  return { fingerprint: peer.fingerprint, alias: peer.alias, app_type: appTypeIn(peer.scopes, scope) ?? "", meta: peer.meta, verified: peer.verified };
}

function roomInfoOf(scope: Scope): RoomInfo {
  return {
    room_id: scope.name,
    peer_count: scope.members.size,
    max_size: scope.room?.maxSize ?? 0,
    owner: scope.room?.owner ?? "",
  };
}

export { mergeMeta } from "../../protocol/requests.ts";
