import type { PeerChannels } from "../backends/peer-channels.ts";
import { SCOPE_PREFIX, peerRoom, scopeRoom } from "../delivery/delivery.ts";
import type { DecodedRequest } from "../protocol/decoder.ts";
import { ErrorCode, ProtocolError, badRequest } from "../protocol/errors.ts";
import { decodeFrame, encodeRefusal, encodeTargeted, type TargetedFrame } from "../protocol/peer-frames.ts";
import { isAliasName, type BroadcastRequest, type TargetedRequest } from "../protocol/requests.ts";
import type { ServerBody } from "../protocol/server-messages.ts";
import type { PeerRecord } from "../backends/state-store.ts";
import type { CoreContext } from "./context.ts";
import type { Resumption } from "./resumption.ts";
import { peerOf, type Session } from "./session.ts";

/** What the messaging handlers use. */
export interface MessagingContext extends Pick<CoreContext, "store" | "delivery" | "sessions" | "clock" | "metrics"> {
  /** Where a message for a suspended peer waits (session resume). */
  readonly resumption: Pick<Resumption, "deliverOrBuffer">;
  /** Straight to the target's node (nodes on Redis); undefined where the adapter or the worker links carry targeted messages. */
  readonly channels: PeerChannels | undefined;
  /** Answers a request with an error after its turn in the queue ended (a refusal decided on the target's node). */
  refuseLate(session: Session, error: ProtocolError, ref: string): void;
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
      // Serialized here either way: a Socket.IO target then takes it as text too, past its
      // library's encoder (which would look for binary data the parser never lets in).
      local.connection.sendEncoded(request.type, targetedJson(from, local.fingerprint, payloadJsonOf(request), ts));
      session.handedOffAt = this.ctx.metrics.signalDelivered(receivedAt);
      return undefined;
    }
    const channels = this.ctx.channels;
    if (channels === undefined) return this.targetedRemote(from, request, receivedAt);
    if (!goesStraightToChannel(request, session.acknowledged)) return this.sendByStore(channels, from, scopesOf(session.connection.rooms), request, receivedAt);
    this.sendToChannel(channels, session, from, request, receivedAt);
    return undefined;
  }

  /**
   * A target on another node, or none: sent on its channel with the sender's scopes, and the
   * target's node decides (see arrived). When no node holds the channel, the store decides (see
   * sendByStore) and a refusal reaches the sender after its turn.
   */
  private sendToChannel(channels: PeerChannels, session: Session, from: string, request: TargetedRequest, receivedAt: number): void {
    const scopes = scopesOf(session.connection.rooms);
    const frame = encodeTargeted(request.type, from, scopes, receivedAt, this.ctx.clock.now(), payloadJsonOf(request));
    session.beginSend();
    // One reaction per message on the hot path; only a target no node holds costs more.
    channels.send(request.to, frame).then(
      (receivers) => {
        if (receivers > 0) {
          session.settleSend();
          return;
        }
        this.sendByStore(channels, from, scopes, request, receivedAt).then(
          () => session.settleSend(),
          (error: unknown) => {
            this.ctx.refuseLate(session, asProtocolError(error), request.type);
            session.settleSend();
          },
        );
      },
      (error: unknown) => {
        this.ctx.refuseLate(session, asProtocolError(error), request.type);
        session.settleSend();
      },
    );
  }

  /**
   * The store resolves the target (an alias too) and checks the shared scope: 404, 403, or 400 for
   * the sender itself. A suspended target gets the message in its buffer; a registered one on its
   * channel, which a node holding it has subscribed by now (a peer registering this moment
   * subscribes before its `registered` goes out). Still nobody: its node died before it was
   * reaped, and the target is as good as gone (404); or, just after this node's connection to the
   * broker came back, its node has not subscribed again yet (503: try again).
   */
  private async sendByStore(channels: PeerChannels, from: string, scopes: readonly string[], request: TargetedRequest, receivedAt: number): Promise<undefined> {
    const target = await this.ctx.store.resolveTarget(from, request.to);
    const ts = this.ctx.clock.now();
    const payloadJson = payloadJsonOf(request);
    if (target.suspended === true) {
      const bodyJson = targetedJson(from, target.fingerprint, payloadJson, ts);
      await this.buffer(target, request.type, bodyJson);
      return undefined;
    }
    const here = this.ctx.sessions.withFingerprint(target.fingerprint);
    if (here !== undefined) {
      here.connection.sendEncoded(request.type, targetedJson(from, target.fingerprint, payloadJson, ts));
      return undefined;
    }
    const frame = encodeTargeted(request.type, from, scopes, receivedAt, ts, payloadJson);
    if ((await channels.send(target.fingerprint, frame)) > 0) return undefined;
    if (channels.settling()) throw new ProtocolError(ErrorCode.Unavailable, "peer not reachable yet, try again");
    throw new ProtocolError(ErrorCode.NotFound, "peer not found");
  }

  /**
   * A frame on the channel of a peer held here. A targeted message is delivered if the target
   * shares a namespace or room with the sender, and refused back to the sender otherwise (403). A
   * target no longer here (its connection just dropped, or it moved) is the store's to decide, on
   * the sender's behalf. A refusal is told to its sender, if it is still here.
   */
  arrived(peer: string, frameText: string): void {
    const frame = decodeFrame(frameText);
    if (frame === undefined) return;
    const session = this.ctx.sessions.withFingerprint(peer);
    if (frame.kind === "refusal") {
      if (session !== undefined) this.ctx.refuseLate(session, new ProtocolError(frame.code as ErrorCode, frame.message), frame.ref);
      return;
    }
    if (session?.fingerprint === undefined) {
      void this.deliverByStore(peer, frame);
      return;
    }
    if (!sharesAny(frame.scopes, session.connection.rooms)) {
      this.refuseToSender(frame, new ProtocolError(ErrorCode.Forbidden, "no shared namespace"));
      return;
    }
    session.connection.sendEncoded(frame.type, targetedJson(frame.from, session.fingerprint, frame.payloadJson, frame.ts));
    this.ctx.metrics.signalDelivered(frame.receivedAt);
  }

  /** A frame for a peer that is not here (any more): the store resolves it, as for a sender on this node. */
  private async deliverByStore(peer: string, frame: TargetedFrame): Promise<void> {
    try {
      const target = await this.ctx.store.resolveTarget(frame.from, peer);
      const bodyJson = targetedJson(frame.from, target.fingerprint, frame.payloadJson, frame.ts);
      if (target.suspended === true) {
        await this.buffer(target, frame.type, bodyJson);
        return;
      }
      const here = this.ctx.sessions.withFingerprint(target.fingerprint);
      // Back here meanwhile (a resume on this node): the frame is delivered as if it had just arrived.
      if (here !== undefined) here.connection.sendEncoded(frame.type, bodyJson);
      else this.ctx.delivery.toPeer(target, frame.type, JSON.parse(bodyJson) as ServerBody<"signal">, bodyJson, frame.receivedAt);
    } catch (error) {
      this.refuseToSender(frame, asProtocolError(error));
    }
  }

  /** A message built as text for a suspended target: into its buffer (or on to where it resumed meanwhile). */
  private buffer(target: PeerRecord, type: string, bodyJson: string): Promise<void> {
    return this.ctx.resumption.deliverOrBuffer(target, type, JSON.parse(bodyJson) as ServerBody<"signal">, bodyJson);
  }

  private refuseToSender(frame: TargetedFrame, error: ProtocolError): void {
    const sender = this.ctx.sessions.withFingerprint(frame.from);
    if (sender !== undefined) {
      this.ctx.refuseLate(sender, error, frame.type);
      return;
    }
    void this.ctx.channels?.send(frame.from, encodeRefusal(frame.type, error.code, error.message)).catch(() => undefined);
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

/**
 * Whether a request, with peer channels, goes straight to its target's channel without waiting for
 * its outcome: a signal or relay to a fingerprint (or dialect identity), without an acknowledgement
 * callback. Anything else is handled in its turn, after the outcomes of the connection's earlier
 * straight sends (the hub waits for them): a callback gets its outcome, and a target named by its
 * alias is found by the store first, which later messages must not overtake.
 */
export function goesStraightToChannel(request: DecodedRequest, acknowledged: boolean): boolean {
  if (acknowledged || request instanceof ProtocolError) return false;
  return (request.type === "signal" || request.type === "relay") && !isAliasName(request.to);
}

/** A targeted request's payload as JSON text: as received when it came as text. */
const payloadJsonOf = (request: TargetedRequest): string => request.payloadJson ?? JSON.stringify(request.payload);

/** The adapter rooms of a connection's namespaces and rooms. */
function scopesOf(rooms: ReadonlySet<string>): string[] {
  const scopes: string[] = [];
  for (const room of rooms) if (room.startsWith(SCOPE_PREFIX)) scopes.push(room);
  return scopes;
}

/** True when a connection's adapter rooms hold one of `scopes`. */
function sharesAny(scopes: readonly string[], rooms: ReadonlySet<string>): boolean {
  for (const scope of scopes) if (rooms.has(scope)) return true;
  return false;
}

/** A failure as the sender is told it: a refusal as it is, anything else "unavailable" (the broker failed). */
function asProtocolError(error: unknown): ProtocolError {
  return error instanceof ProtocolError ? error : new ProtocolError(ErrorCode.Unavailable, "message could not be sent", undefined, { cause: error });
}

/** True when two adapter room sets share a namespace or room. */
function shareScope(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  for (const room of a) {
    if (room.startsWith(SCOPE_PREFIX) && b.has(room)) return true;
  }
  return false;
}
