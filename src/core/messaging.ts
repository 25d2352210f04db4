import { SCOPE_PREFIX, peerRoom, scopeRoom } from "../delivery/delivery.ts";
import { ErrorCode, ProtocolError, badRequest } from "../protocol/errors.ts";
import type { BroadcastRequest, TargetedRequest } from "../protocol/requests.ts";
import type { ServerBody } from "../protocol/server-messages.ts";
import type { CoreContext } from "./context.ts";
import type { Resumption } from "./resumption.ts";
import { peerOf, type Session } from "./session.ts";

/** What the messaging handlers use. */
export interface MessagingContext extends Pick<CoreContext, "store" | "delivery" | "sessions" | "clock" | "metrics"> {
  /** Where a message for a suspended peer waits (session resume). */
  readonly resumption: Pick<Resumption, "deliverOrBuffer">;
}

/**
 * Peer-to-peer messages: `signal` and `relay` to one peer, `broadcast` to a namespace or room.
 * This is the hot path: a target on this process is served synchronously, with no store call and
 * no promise, and a payload that arrived as text is forwarded as that text.
 */
export class Messaging {
  constructor(private readonly ctx: MessagingContext) {}

  /**
   * `signal` and `relay`: one target, which must share a namespace or room with the sender (403),
   * exist (404) and not be the sender (400). No reply. `receivedAt` (a Metrics.now() stamp, 0 with
   * metrics off) travels with the message to the target's process, which observes the delivery time.
   */
  targeted(session: Session, request: TargetedRequest, receivedAt = 0): undefined | Promise<undefined> {
    const from = peerOf(session);
    const local = this.ctx.sessions.resolve(request.to);
    if (local !== undefined && local.fingerprint !== undefined) {
      // Both peers live here: their adapter rooms are authoritative.
      if (local === session) throw badRequest("cannot send to yourself");
      if (!shareScope(session.connection.rooms, local.connection.rooms)) throw new ProtocolError(ErrorCode.Forbidden, "no shared namespace");
      const ts = this.ctx.clock.now();
      if (request.payloadJson !== undefined) local.connection.sendEncoded(request.type, targetedJson(from, local.fingerprint, request.payloadJson, ts));
      else local.connection.send(request.type, { from, to: local.fingerprint, payload: request.payload, ts } satisfies ServerBody<"signal">);
      session.handedOffAt = this.ctx.metrics.signalDelivered(receivedAt);
      return undefined;
    }
    return this.targetedRemote(from, request, receivedAt);
  }

  /**
   * A target on another process, or none: the store resolves it and checks the shared scope in one
   * call. A suspended target (its connection dropped within resume_grace) gets it in its buffer.
   */
  private async targetedRemote(from: string, request: TargetedRequest, receivedAt: number): Promise<undefined> {
    const target = await this.ctx.store.resolveTarget(from, request.to);
    const ts = this.ctx.clock.now();
    const body = { from, to: target.fingerprint, payload: request.payload, ts } satisfies ServerBody<"signal">;
    const bodyJson = request.payloadJson === undefined ? undefined : targetedJson(from, target.fingerprint, request.payloadJson, ts);
    if (target.suspended === true) {
      await this.ctx.resumption.deliverOrBuffer(target, request.type, body, bodyJson ?? JSON.stringify(body));
      return undefined;
    }
    this.ctx.delivery.toPeer(target, request.type, body, bodyJson, receivedAt);
    return undefined;
  }

  /**
   * `broadcast` to every other member of a namespace or room the sender is in (403 otherwise, 404 for
   * a name nobody is in), but the excluded fingerprints; serialized once for all of them. No reply.
   */
  async broadcast(session: Session, request: BroadcastRequest): Promise<undefined> {
    const room = scopeRoom(request.namespace);
    if (!session.connection.rooms.has(room)) {
      if (!(await this.ctx.store.scopeExists(request.namespace))) throw new ProtocolError(ErrorCode.NotFound, "no such namespace");
      throw new ProtocolError(ErrorCode.Forbidden, "join the namespace before broadcasting");
    }
    const except = [session.connection.id];
    for (const fingerprint of request.exclude) except.push(peerRoom(fingerprint));
    const body = {
      from: peerOf(session),
      namespace: request.namespace,
      payload: { namespace: request.namespace, data: request.data },
      ts: this.ctx.clock.now(),
    } satisfies ServerBody<"broadcast">;
    await this.ctx.delivery.emit(room, "broadcast", body, except);
    return undefined;
  }
}

/** The body of a delivered signal or relay, built around the payload's received text (fingerprints are hex: nothing to escape). */
function targetedJson(from: string, to: string, payloadJson: string, ts: number): string {
  return `{"from":"${from}","to":"${to}","payload":${payloadJson},"ts":${ts}}`;
}

/** True when two adapter room sets share a namespace or room. */
function shareScope(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  for (const room of a) {
    if (room.startsWith(SCOPE_PREFIX) && b.has(room)) return true;
  }
  return false;
}
