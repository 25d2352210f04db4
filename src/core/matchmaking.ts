import { randomUUID } from "node:crypto";
import { peerRoom, scopeRoom } from "../delivery/delivery.ts";
import { ErrorCode, ProtocolError } from "../protocol/errors.ts";
import type { MatchRequest, NamespaceRequest } from "../protocol/requests.ts";
import type { ServerBody, ServerMessage } from "../protocol/server-messages.ts";
import type { CoreContext } from "./context.ts";
import { checkCriteriaSize, type PeerLimits } from "./peer-limits.ts";
import type { Resumption } from "./resumption.ts";
import { peerOf, type Session } from "./session.ts";
import { withFields } from "../internals/object-copy.ts";

/** What the matchmaking handlers use. */
export interface MatchmakingContext extends Pick<CoreContext, "store" | "delivery" | "joins" | "clock" | "access"> {
  readonly limits: Pick<PeerLimits, "caps" | "maxCriteriaBytes">;
  /** Where the `matched` of a suspended member waits for it (session resume). */
  readonly resumption: Pick<Resumption, "bufferFor">;
}

/** In a MatchRequest's groupRoom, stands for the session id of the group that forms. */
export const GROUP_ID = "{session}";

/**
 * Criteria matchmaking inside a namespace: tickets queue by namespace, group size and criteria
 * (in the store, so groups form across processes), first come, first matched.
 */
export class Matchmaking {
  constructor(private readonly ctx: MatchmakingContext) {}

  /**
   * `match`: queues the peer's ticket (replacing its earlier one in that namespace). Replies
   * `match` waiting, or, when this ticket completes a group, `matched`, which every other member
   * of the group gets too. Criteria over max_criteria_bytes get 400, a ticket that would wait
   * beside max_tickets_per_peer others 429, a namespace the access token does not grant 403.
   * A suspended member (its ticket waited while it was away) finds its `matched` in its buffer.
   */
  async match(session: Session, request: MatchRequest): Promise<ServerMessage<"match" | "matched">> {
    const { store, limits } = this.ctx;
    this.ctx.access.checkNamespace(session, request.namespace);
    checkCriteriaSize(request.criteria, limits.maxCriteriaBytes);
    const fingerprint = peerOf(session);
    // The session id is chosen here so that every replica of the store agrees on it.
    const sessionId = randomUUID().replaceAll("-", "");
    const groupRoom = request.groupRoom?.replace(GROUP_ID, sessionId);
    const outcome = await store.requestMatch(withFields(request, { fingerprint, sessionId, groupRoom, caps: limits.caps }));
    if (outcome.status === "waiting") return { type: "match", body: { payload: { status: "waiting", namespace: request.namespace } } };
    const body: ServerBody<"matched"> = {
      namespace: request.namespace,
      payload: { namespace: request.namespace, session_id: outcome.sessionId, peers: outcome.peers },
      ts: this.ctx.clock.now(),
    };
    const members = outcome.peers.filter((peer) => peer.fingerprint !== fingerprint).map((peer) => peer.fingerprint);
    const others = members.map(peerRoom);
    if (request.groupRoom !== undefined) {
      // The store made the group a room: its members hear through it from now on, before they hear of the match.
      const room = request.groupRoom.replace(GROUP_ID, outcome.sessionId);
      this.ctx.joins.created(session, room, request.groupSize);
      for (const other of others) await this.ctx.delivery.join(other, scopeRoom(room), fingerprint);
    }
    const buffered = await this.ctx.resumption.bufferFor(members, "matched", JSON.stringify(body));
    const live = buffered.size === 0 ? others : members.filter((member) => !buffered.has(member)).map(peerRoom);
    // Ordered with what the requester sends next (an offer right after its reply) on every path.
    await this.ctx.delivery.emit(live, "matched", body, undefined, undefined, fingerprint);
    return { type: "matched", body };
  }

  /** `match_cancel`: drops the peer's ticket in the namespace (404 without one); replies `match` cancelled. */
  async cancel(session: Session, request: NamespaceRequest): Promise<ServerMessage<"match">> {
    if (!(await this.ctx.store.cancelMatch(request.namespace, peerOf(session)))) {
      throw new ProtocolError(ErrorCode.NotFound, "no match request to cancel");
    }
    return { type: "match", body: { payload: { status: "cancelled", namespace: request.namespace } } };
  }
}
