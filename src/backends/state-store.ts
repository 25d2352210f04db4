import { ErrorCode, ProtocolError } from "../protocol/errors.ts";
import type { Criteria, Meta } from "../protocol/requests.ts";

/**
 * The state that must be one for the whole deployment: the peer registry (fingerprint and alias
 * uniqueness), namespace and room membership, room ownership, matchmaking queues, bans.
 *
 * Implementations live side by side (memory for one process; cluster IPC and Redis for many) and
 * pass one contract suite (test/contract). Domain failures are thrown as ProtocolError with the
 * protocol's code (403, 404, 409, 429); a backend that cannot answer throws code 503.
 *
 * A "scope" is a public namespace or a private room: they share one name space.
 */
export interface StateStore {
  /**
   * Claims a fingerprint for a connection. A requested alias must be free (409 otherwise); without one,
   * the first free candidate is taken. If the fingerprint is held by another connection, the new one
   * takes over and the old one's memberships are removed and returned as `replaced`, unless the
   * holder is verified and the newcomer is not: then 409 and nothing changes.
   */
  registerPeer(request: RegisterPeer): Promise<Registration>;
  /** Removes the peer if `connectionId` still owns the fingerprint; otherwise does nothing. */
  unregisterPeer(fingerprint: string, connectionId: string): Promise<Departure | undefined>;
  /** Resolves a `to` field: as a fingerprint first, then as an alias. */
  resolvePeer(to: string): Promise<PeerRecord | undefined>;
  /** Everything the deployment holds about a registered fingerprint (never an alias), for the operator. */
  peerDetails(fingerprint: string): Promise<PeerDetails | undefined>;
  /**
   * Resolves the target of a signal or relay from `from` and checks that the two may talk, in one
   * step (one round trip for remote stores): 404 unknown target, 400 the sender itself, 403 no
   * shared namespace or room.
   */
  resolveTarget(from: string, to: string): Promise<PeerRecord>;
  /** Shallow-merges `patch` into the peer's meta; null values delete keys. 400 if the result passes 4 KB. */
  updateMeta(fingerprint: string, patch: Meta): Promise<void>;

  /**
   * Suspends a peer whose connection dropped, if `connectionId` still holds it and it is not
   * suspended already: it stays registered, in its namespaces, rooms and match queues, until
   * `until` (ms since the epoch, on the callers' clocks, as bans) unless resumePeer gives it to a
   * new connection first. Meanwhile targeted messages wait in its buffer (bufferMessage), and it
   * belongs to no node: removeNode leaves it, expireSuspended removes it. False (nothing changes)
   * when the connection no longer holds the fingerprint or it is suspended already.
   */
  suspendPeer(fingerprint: string, connectionId: string, until: number): Promise<boolean>;
  /**
   * Gives a registered peer to a new connection when `resumeHash` is the non-empty hash its
   * registration was given (RegisterPeer.resumeHash), in one step with taking its buffer: it keeps
   * its alias, meta, namespaces, rooms and match tickets, and its token. A suspended peer resumes
   * while its suspension has not ended at `now`; a live one is taken over (`replaced` names its
   * connection). Undefined, with nothing changed, when the fingerprint is not registered, the hash
   * differs, or the suspension ended: the caller registers afresh. 409 as registerPeer when the
   * holder is verified and the request is not.
   */
  resumePeer(request: ResumePeer): Promise<ResumedPeer | undefined>;
  /**
   * Appends `message` to the buffer of each of `targets` that is suspended, keeping its newest
   * `limit` messages (each one dropped counts in ResumedPeer.missed). Resolves with the targets it
   * was appended for, in the order given; the others (live, unknown) are left to the caller.
   */
  bufferMessage(targets: readonly string[], message: string, limit: number): Promise<string[]>;
  /**
   * Removes every peer whose suspension ended at or before `now` (the caller's clock), as
   * unregisterPeer would, and returns what each left behind; each is returned to one caller only.
   */
  expireSuspended(now: number): Promise<Departure[]>;

  /**
   * Joins a public namespace (403 if the name is a room). Idempotent: `added` is false the second
   * time. With `options.caps`, 429 when the peer is already in `maxScopes` namespaces and rooms.
   */
  joinNamespace(name: string, fingerprint: string, options: JoinOptions): Promise<JoinResult>;
  /** Leaves a namespace or room (404 if not a member); drops the peer's ticket there, unless it is `open`. */
  leaveScope(name: string, fingerprint: string): Promise<void>;
  /**
   * Lists members, oldest first: at most `limit`, after skipping the `offset` oldest (default 0).
   * Rooms are listed to members only (403); a null `requester` is the operator (the admin API),
   * who is shown rooms too. Unknown names are empty.
   */
  listMembers(name: string, requester: string | null, limit: number, offset?: number): Promise<MemberPage>;
  /** True when the peer is a member of the scope. */
  isMember(name: string, fingerprint: string): Promise<boolean>;
  /** True when a namespace or room of that name has members. */
  scopeExists(name: string): Promise<boolean>;
  /** True when the two peers share at least one namespace or room. */
  sharesScope(a: string, b: string): Promise<boolean>;

  /**
   * Creates a room owned and joined by `owner`; 409 if the name is taken by a room or a namespace.
   * With `caps`, 429 when the owner already owns `maxRooms` rooms or is in `maxScopes` scopes.
   */
  createRoom(roomId: string, owner: string, maxSize: number, caps?: PeerCaps): Promise<RoomInfo>;
  /**
   * Joins a room: 404 unknown, 403 while a kick ban of the peer there is in force at
   * `admission.now`, 429 full, or (with `admission.caps`) 429 when the peer is already in
   * `maxScopes` namespaces and rooms. Idempotent. Without `admission` nothing but the size is
   * checked (a membership restored after the state was lost).
   */
  joinRoom(roomId: string, fingerprint: string, listLimit: number, admission?: RoomAdmission): Promise<RoomJoinResult>;
  roomInfo(roomId: string): Promise<RoomInfo>;
  /**
   * Removes `target` from the room: 404 room or target unknown, 403 if `owner` does not own it.
   * With `ban`, the target's joinRoom of this room is refused (403) while `ban.until` is after the
   * `now` it is given. Bans expire by the callers' clocks, as addBan's do, and belong to the room:
   * a room that empties is gone with its bans.
   */
  kick(roomId: string, owner: string, target: string, ban?: KickBan): Promise<void>;

  /**
   * Queues a match ticket, replacing the peer's earlier one in that namespace; 403 unless a member
   * (or the ticket is `open`). Tickets queue by namespace, group size, criteria and openness. The
   * group is this ticket plus the oldest waiting tickets compatible with it and with each other
   * (see `avoid`), first come, first served; incompatible tickets keep their place. When the group
   * is complete its tickets are consumed and, with `groupRoom`, its room created in the same atomic
   * step (409 if that name is taken: then nothing changes, the earlier ticket included). With
   * `caps.maxTickets`, a ticket that would wait while the peer has that many waiting in other
   * namespaces gets 429, and its earlier ticket in this namespace stays.
   */
  requestMatch(ticket: MatchTicket): Promise<MatchOutcome>;
  /** Removes the peer's ticket in the namespace; false if it had none. */
  cancelMatch(namespace: string, fingerprint: string): Promise<boolean>;

  /**
   * Removes every peer registered by a process or node that died without cleaning up, and returns
   * what each left behind. Implementations that replicate state report these to `onDepartures`
   * on every process, so each can tell its own connections.
   */
  removeNode(nodeId: string): Promise<Departure[]>;

  /**
   * Adds a ban (an existing ban with the same id is replaced). Bans expire by the clock of the
   * callers, never the backend's: `now` is the caller's time, with which bans expired by then are
   * forgotten, so every copy of a replicated state forgets the same ones.
   */
  addBan(ban: Ban, now: number): Promise<void>;
  /** The bans in force at `now` (expiresAt after it), oldest first (by createdAt, then id). */
  listBans(now: number): Promise<Ban[]>;
  /** Lifts a ban: true when a ban with that id was in force at `now`, false when none was (unknown, or expired). */
  removeBan(id: string, now: number): Promise<boolean>;

  stats(): Promise<StoreStats>;
  close(): Promise<void>;
}

export interface RegisterPeer {
  fingerprint: string;
  connectionId: string;
  /** The process (or node) holding the connection; see removeNode. */
  nodeId: string;
  alias: string | undefined;
  /** Generated aliases to try, in order, when none was requested. */
  aliasCandidates: readonly string[];
  meta: Meta;
  /**
   * The register proved possession of the key (see trust/key-proof.ts). An unverified register
   * cannot take over a fingerprint a verified connection holds.
   */
  verified: boolean;
  /**
   * The hash of the resume token the peer is given (see resumePeer); absent or "": the
   * registration cannot be resumed.
   */
  resumeHash?: string;
}

/** A `register` that asks to resume a registration (StateStore.resumePeer). */
export interface ResumePeer {
  fingerprint: string;
  /** The hash of the resume token the client presented. */
  resumeHash: string;
  connectionId: string;
  nodeId: string;
  /** As RegisterPeer.verified; the peer's `verified` becomes this. */
  verified: boolean;
  /** The caller's clock, ms since the epoch: a suspension that ended by then cannot be resumed. */
  now: number;
}

/** A registration given to a new connection by StateStore.resumePeer. */
export interface ResumedPeer {
  alias: string;
  meta: Meta;
  /** Every namespace and room the peer is in. */
  scopes: ResumedScope[];
  /** What bufferMessage kept for it, oldest first. */
  messages: string[];
  /** How many messages its buffer dropped (past `limit`) since it was suspended. */
  missed: number;
  /** The connection that held the peer when it was live (now taken over); absent when it was suspended. */
  replaced?: string;
}

/** One scope of a resumed peer. */
export interface ResumedScope {
  name: string;
  /** The app_type it joined a namespace with ("" for a room). */
  appType: string;
  /** A room's max_size; undefined for a public namespace. */
  roomSize: number | undefined;
}

export interface Registration {
  alias: string;
  replaced?: Departure & { connectionId: string };
}

export interface PeerRecord {
  fingerprint: string;
  alias: string;
  connectionId: string;
  nodeId: string;
  /**
   * True while the peer is suspended (StateStore.suspendPeer): its connection is gone and targeted
   * messages go to its buffer. Set by resolvePeer and resolveTarget; absent otherwise.
   */
  suspended?: true;
}

/** A registered peer as the operator sees it (StateStore.peerDetails). */
export interface PeerDetails extends PeerRecord {
  meta: Meta;
  /** Its registration proved possession of the key (RegisterPeer.verified). */
  verified: boolean;
  /** Every namespace and room it is in, by name. */
  scopes: PeerScope[];
}

/** One scope a peer is in. */
export interface PeerScope {
  name: string;
  /** True for a private room, false for a public namespace. */
  room: boolean;
  /** The app_type it joined a namespace with ("" for a room). */
  app_type: string;
}

/** What a ban applies to: a peer's fingerprint, or a client address (see trust/client-address.ts normalizeAddress). */
export type BanKind = "fingerprint" | "ip";

/** One ban, deployment-wide: the peer or address is refused until expiresAt. */
export interface Ban {
  /** Chosen by the caller (random), so that every copy of a replicated state agrees on it. */
  id: string;
  kind: BanKind;
  /** The fingerprint, or the address in its normal form. */
  value: string;
  /** Why, as the operator wrote it ("" when none was given). */
  reason: string;
  /** When it was made: ms since the epoch, on the caller's clock. */
  createdAt: number;
  /** When it ends: ms since the epoch, on the callers' clocks. */
  expiresAt: number;
}

/** What a peer left behind: the scopes others must be told about. */
export interface Departure {
  fingerprint: string;
  scopes: string[];
}

export interface MemberInfo {
  fingerprint: string;
  alias: string;
  app_type: string;
  meta: Meta;
  /** RegisterPeer.verified of the peer's registration. */
  verified: boolean;
}

export interface JoinOptions {
  appType: string;
  meta: Meta | undefined;
  listLimit: number;
  /** The peer's caps; only `maxScopes` applies. Absent: none checked. */
  caps?: PeerCaps;
}

/**
 * What one peer may hold at once (the max_*_per_peer options). A store checks a cap in the same
 * atomic step as the change that would pass it: 429 naming the cap (capReached), and nothing
 * changes. A cap left out is not checked. A repeated join, a ticket replacing the peer's earlier
 * one in its namespace, and a group room formed by requestMatch are never refused for a cap.
 */
export interface PeerCaps {
  /** Namespaces and rooms it is in (joinNamespace, joinRoom, createRoom). */
  maxScopes?: number;
  /** Rooms it owns, however it came to own them: created, or passed on by an owner who left (createRoom). */
  maxRooms?: number;
  /** Match tickets it has waiting (requestMatch, when the new ticket would wait). */
  maxTickets?: number;
}

/** What StateStore.joinRoom checks beside the room's size. */
export interface RoomAdmission {
  /** The caller's clock, ms since the epoch: a kick ban is in force while its `until` is after it. */
  now: number;
  caps?: PeerCaps;
}

/** A kick's ban on joining the room again (StateStore.kick). */
export interface KickBan {
  /** The caller's clock, ms since the epoch: bans of the room expired by then are forgotten. */
  now: number;
  /** When the ban ends: ms since the epoch, on the callers' clocks. */
  until: number;
}

/** The 429 of a peer at one of its caps (PeerCaps), naming the option: "max_scopes_per_peer (64) reached". */
export function capReached(option: "max_scopes_per_peer" | "max_rooms_per_peer" | "max_tickets_per_peer", cap: number): ProtocolError {
  return new ProtocolError(ErrorCode.TooMany, `${option} (${cap}) reached`);
}

/** The message of joinRoom's 403 while a kick ban is in force. */
export const KICKED = "kicked from this room; try again later";

export interface MemberPage {
  peers: MemberInfo[];
  total: number;
}

export interface JoinResult extends MemberPage {
  added: boolean;
  member: MemberInfo;
  /**
   * The member's place in join order: whoever joined the scope before it has a lower seq, whoever
   * joined after a higher one (leaving and joining again takes a new, higher seq). A peer_joined
   * notice carries its joiner's seq, so a receiver drops notices its own peer_list already covered.
   */
  seq: number;
}

export interface RoomJoinResult extends JoinResult {
  /** The room's max_size, kept by the member's node to recreate the room after a state loss. */
  maxSize: number;
}

export interface RoomInfo {
  room_id: string;
  peer_count: number;
  max_size: number;
  owner: string;
}

export interface MatchTicket {
  /** The namespace whose members queue here; with `open`, only the queue's name. */
  namespace: string;
  fingerprint: string;
  groupSize: number;
  criteria: Criteria;
  /** The session id to give the group if this ticket completes one (chosen by the caller so replicas agree). */
  sessionId: string;
  /**
   * Fingerprints this ticket is never grouped with. The rule is symmetric: a waiting ticket whose
   * own list names the newcomer is skipped too. Kept with the waiting ticket and dropped with it;
   * the caller keeps it short (a few entries), as every candidate is checked against it.
   */
  avoid?: readonly string[];
  /**
   * True when the queue needs no membership of `namespace`. An open ticket still goes with its
   * peer (unregisterPeer, removeNode, a takeover), but not when the peer leaves a scope of that
   * name; open and members' tickets of one namespace never share a queue.
   */
  open?: boolean;
  /**
   * When this ticket completes a group, the name of a private room its members join in the same
   * atomic step, as if the member with the oldest ticket had created it with `max_size` = the
   * group size and the others had joined it in ticket order. 409 if the name is taken by a room
   * or a namespace. Only the completing ticket's room counts (as with `sessionId`): chosen by the
   * caller so replicas agree.
   */
  groupRoom?: string;
  /** The peer's caps; only `maxTickets` applies. Absent: none checked. */
  caps?: PeerCaps;
}

export type MatchOutcome =
  | { status: "waiting" }
  /** `peers`: the group, oldest ticket first (the completing ticket last). */
  | { status: "matched"; sessionId: string; peers: MemberInfo[] };

export interface StoreStats {
  totalPeers: number;
  /** Member count of each public namespace; rooms (group rooms included) are never listed. */
  namespaces: Record<string, number>;
  /** Registered peers by identityKind of their fingerprint; only kinds with peers are listed. */
  peersByKind: Record<string, number>;
}

/**
 * The kind of an identity: the text before the first ':' of its fingerprint (`pigeon` for
 * `pigeon:0123…`), "" for a fingerprint without one (the native 64-hex fingerprints).
 */
export function identityKind(fingerprint: string): string {
  const colon = fingerprint.indexOf(":");
  return colon === -1 ? "" : fingerprint.slice(0, colon);
}
