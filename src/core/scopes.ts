import { randomBytes } from "node:crypto";
import { peerRoom, scopeRoom } from "../delivery/delivery.ts";
import {
  LIMITS,
  mergeMeta,
  type CreateRoomRequest,
  type DiscoverRequest,
  type JoinRequest,
  type KickRequest,
  type NamespaceRequest,
  type RoomRequest,
} from "../protocol/requests.ts";
import { ErrorCode, ProtocolError } from "../protocol/errors.ts";
import { peerList, type ServerBody, type ServerMessage } from "../protocol/server-messages.ts";
import type { CoreContext } from "./context.ts";
import { kickBanAt, type PeerLimits } from "./peer-limits.ts";
import type { Resumption } from "./resumption.ts";
import { peerOf, type Session } from "./session.ts";

/** What the scope handlers use. */
export interface ScopesContext extends Pick<CoreContext, "store" | "delivery" | "joins" | "clock" | "access"> {
  readonly limits: Pick<PeerLimits, "caps" | "kickBanMs">;
  /** Where the kick of a suspended peer waits for it (session resume). */
  readonly resumption: Pick<Resumption, "bufferFor">;
}

/**
 * Namespaces and private rooms (one name space, "scopes"): joining, leaving, listing members,
 * creating rooms, describing them and kicking out of them. Who hears of whom when a peer joins is
 * decided by the JoinGate; this module decides who may join what.
 */
export class Scopes {
  constructor(private readonly ctx: ScopesContext) {}

  /**
   * `join`: enters a public namespace (the peer's meta takes the join's); replies with its peer_list.
   * An exclusive join (dialects) leaves every other namespace and room first, each told peer_left.
   * A namespace the connection's access token does not grant gets 403.
   */
  async join(session: Session, request: JoinRequest): Promise<ServerMessage<"peer_list">> {
    const { store, joins } = this.ctx;
    const fingerprint = peerOf(session);
    this.ctx.access.checkNamespace(session, request.namespace);
    if (request.exclusive === true) {
      for (const other of [...session.memberships.keys()]) if (other !== request.namespace) await this.leaveIfMember(session, other);
    }
    const options = { appType: request.appType, meta: request.meta, listLimit: request.listLimit ?? LIMITS.joinListLimit, caps: this.ctx.limits.caps };
    const result = await joins.enterWhile(session, request.namespace, () => store.joinNamespace(request.namespace, fingerprint, options));
    if (request.meta !== undefined) session.meta = mergeMeta(session.meta, request.meta);
    await joins.joined(session, request.namespace, result, { appType: request.appType, roomSize: undefined });
    return peerList(request.namespace, result);
  }

  /** `join_room`: enters a room by id (403 while kicked from it); replies with its peer_list. */
  async joinRoom(session: Session, request: RoomRequest): Promise<ServerMessage<"peer_list">> {
    const { store, joins, clock, limits } = this.ctx;
    const fingerprint = peerOf(session);
    const admission = { now: clock.now(), caps: limits.caps };
    const result = await joins.enterWhile(session, request.roomId, () => store.joinRoom(request.roomId, fingerprint, LIMITS.joinListLimit, admission));
    // The size is kept to create the room again if this member is the first back after the state was lost.
    await joins.joined(session, request.roomId, result, { appType: undefined, roomSize: result.maxSize });
    return peerList(request.roomId, result);
  }

  /** `leave` of a namespace or room; the others get peer_left. No reply. */
  async leave(session: Session, request: NamespaceRequest): Promise<undefined> {
    const fingerprint = peerOf(session);
    await this.ctx.store.leaveScope(request.namespace, fingerprint);
    this.ctx.joins.left(session, request.namespace);
    const body = { from: fingerprint, namespace: request.namespace } satisfies ServerBody<"peer_left">;
    await this.ctx.delivery.emit(scopeRoom(request.namespace), "peer_left", body, [session.connection.id]);
    return undefined;
  }

  /** Leaves a scope this node believes the peer is in; one the store no longer has it in is only forgotten here. */
  private async leaveIfMember(session: Session, name: string): Promise<void> {
    try {
      await this.leave(session, { namespace: name });
    } catch (error) {
      if (!(error instanceof ProtocolError && error.code === ErrorCode.NotFound)) throw error;
      this.ctx.joins.left(session, name);
    }
  }

  /** `discover`: a page of members, oldest first (rooms to members only). */
  async discover(session: Session, request: DiscoverRequest): Promise<ServerMessage<"peer_list">> {
    const page = await this.ctx.store.listMembers(request.namespace, peerOf(session), request.limit);
    return peerList(request.namespace, page);
  }

  /** `create_room`: a private room owned and joined by its creator; the id is generated when none is asked for. */
  async createRoom(session: Session, request: CreateRoomRequest): Promise<ServerMessage<"room_created">> {
    const roomId = request.roomId ?? `room-${randomBytes(8).toString("hex")}`;
    const info = await this.ctx.store.createRoom(roomId, peerOf(session), request.maxSize, this.ctx.limits.caps);
    this.ctx.joins.created(session, roomId, info.max_size);
    return { type: "room_created", body: { payload: { room_id: info.room_id, max_size: info.max_size, owner: info.owner } } };
  }

  /** `room_info`: any registered peer that names an existing room may ask. */
  async roomInfo(_session: Session, request: RoomRequest): Promise<ServerMessage<"room_info">> {
    return { type: "room_info", body: { payload: await this.ctx.store.roomInfo(request.roomId) } };
  }

  /**
   * `kick` (owner only): the target gets `kick` and leaves the room wherever it is connected; the
   * rest get peer_left. It may not join the room again for kick_ban (the store keeps the ban, so
   * every process refuses it). A suspended target finds its `kick` in its buffer when it resumes.
   */
  async kick(session: Session, request: KickRequest): Promise<undefined> {
    const { store, delivery, clock, limits } = this.ctx;
    const owner = peerOf(session);
    await store.kick(request.roomId, owner, request.fingerprint, kickBanAt(clock.now(), limits.kickBanMs));
    const target = peerRoom(request.fingerprint);
    const room = scopeRoom(request.roomId);
    const kick = { from: owner, payload: { room_id: request.roomId, fingerprint: request.fingerprint }, ts: clock.now() } satisfies ServerBody<"kick">;
    const buffered = await this.ctx.resumption.bufferFor([request.fingerprint], "kick", JSON.stringify(kick));
    // Out of the room before the kick is published: a signal sent once the target has its kick
    // must find it gone (403). One process, the workers of a machine and nodes on one Redis keep
    // that order; on a Redis Cluster the two may pass through different shards, which do not.
    await delivery.leave(target, room, owner);
    if (buffered.size === 0) await delivery.emit(target, "kick", kick);
    await delivery.emit(room, "peer_left", { from: request.fingerprint, namespace: request.roomId } satisfies ServerBody<"peer_left">, [target]);
    return undefined;
  }
}
