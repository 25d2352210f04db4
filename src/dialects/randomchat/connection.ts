import { randomUUID } from "node:crypto";
import type { Socket } from "node:net";
import type { WebSocket } from "ws";
import type { Config } from "../../config/load.ts";
import type { Hub } from "../../core/hub.ts";
import type { Session } from "../../core/session.ts";
import type { Bucket } from "../../limits/token-bucket.ts";
import type { Body } from "../../protocol/envelope.ts";
import { ErrorCode } from "../../protocol/errors.ts";
import type { ClientRequest } from "../../protocol/requests.ts";
import type { MemberEntry } from "../../protocol/server-messages.ts";
import type { WsConnectionContext } from "../../transport/ws-connection.ts";
import { DialectConnection, forwardedSignal } from "../dialect-connection.ts";
import { errorCodeOf, submit } from "../dialect.ts";
import {
  GROUP_ROOM_TEMPLATE,
  LOBBY,
  PARTNER_LEFT_FRAME,
  RandomChatError,
  clientIdOf,
  errorFrame,
  groupRoomOf,
  identityOf,
  isRelayedType,
  matchedFrame,
  relayedFrame,
  type RelayedType,
} from "./wire.ts";

/** Where a user is: neither waiting nor paired, waiting in the lobby, or paired. */
type Phase = "idle" | "waiting" | "paired";

/** The user one is paired with, and the private room the two share. */
interface Partner {
  readonly identity: string;
  readonly clientId: string;
  readonly room: string;
}

/** What every random-chat connection of a process shares. */
export interface RandomChatShared {
  readonly hub: Hub;
  readonly config: Config;
}

/** A core reply as `submit` hands it over: `{type, ...body}`. */
type Reply = Record<string, unknown>;

/**
 * One random-chat user: its clientId, and where it is in the cycle waiting → paired → waiting.
 * Everything else is the core's: the queue is the open match queue `randomchat/lobby`, a pair is
 * a private room `randomchat/<session>` the store creates with the match (so the two can signal
 * each other and hear when one leaves), and a user who disconnects leaves both with its peer.
 *
 * Every transition is decided here, on the event loop, before the core request that carries it
 * out is handed over; the core's replies and deliveries only move the user on if they still
 * concern the state they were asked from.
 */
export class RandomChatConnection extends DialectConnection {
  /** The id its client and its partners know it by: fresh for every connection. */
  readonly clientId = randomUUID();
  /** Its fingerprint in the core. */
  readonly identity = identityOf(this.clientId);
  /** The `userId` of its last `auth`; kept, as the original did, and used for nothing else. */
  userId: string | undefined;
  /** False until `auth` presents the configured token; true from the start when none is configured. */
  authorized: boolean;
  /** Its core session, once the hub admitted it. */
  session: Session | undefined;
  private phase: Phase = "idle";
  private partner: Partner | undefined;
  /** The last user it was paired with: its next ticket avoids them (and theirs avoids it). */
  private lastPartner: string | undefined;
  /** Counts the times it started waiting: a reply to an earlier match request does not end a later wait. */
  private waits = 0;

  constructor(
    id: string,
    socket: WebSocket,
    context: WsConnectionContext,
    tcp: Socket,
    private readonly shared: RandomChatShared,
    /** Its frame budget (see FrameRate). */
    readonly bucket: Bucket,
  ) {
    super(id, "randomchat", socket, context, tcp);
    this.authorized = shared.config.randomchatAuthToken === "";
  }

  /** `available`: waits for a partner; ALREADY_PAIRED while paired; nothing more while already waiting (it keeps its place). */
  available(): void {
    if (this.phase === "paired") this.refuse(RandomChatError.AlreadyPaired);
    else if (this.phase === "idle") this.wait();
  }

  /**
   * `offer`, `answer`, `ice`: to the partner in a core signal, the `sdp` or `candidate` as its text
   * arrived (`valueText`, when it could be read); NOT_PAIRED without one.
   */
  relay(type: RelayedType, value: unknown, valueText: string | undefined): void {
    const partner = this.partner;
    if (partner === undefined) {
      this.refuse(RandomChatError.NotPaired);
      return;
    }
    const { payload, payloadJson } = forwardedSignal(type, value, valueText);
    this.request({ type: "signal", to: partner.identity, payload, payloadJson }, (reply) => {
      if (reply["type"] !== "error") return;
      const code = errorCodeOf(reply);
      // The partner left (it is no longer in the room, or gone): its partner-left is on its way.
      if (code === ErrorCode.Forbidden || code === ErrorCode.NotFound) this.refuse(RandomChatError.NotPaired);
      else this.refuseFor(code);
    });
  }

  /** `next`: leaves the partner (who is told, and waits again) and waits for someone else; NOT_PAIRED without one. */
  nextPartner(): void {
    if (this.partner === undefined) {
      this.refuse(RandomChatError.NotPaired);
      return;
    }
    this.part(this.partner);
    this.wait();
  }

  /** `leave`: leaves the partner (who is told, and waits again) or stops waiting; nothing when neither. */
  leaveChat(): void {
    if (this.partner !== undefined) this.part(this.partner);
    else if (this.phase === "waiting") {
      this.phase = "idle";
      // A 404 means its ticket is gone already: it completed a pair whose `matched` is on its way (see onMatched).
      this.request({ type: "match_cancel", payload: { namespace: LOBBY } });
    }
  }

  /** Hands one core request to the hub in this connection's order; the reply goes to `onReply`. */
  request(request: ClientRequest, onReply?: (reply: Reply) => void): void {
    if (this.session !== undefined) submit(this.shared.hub, this.session, request, onReply);
  }

  /** Sends an error frame; the socket stays open. */
  refuse(code: RandomChatError): void {
    this.sendFrame(errorFrame(code));
  }

  /** The error frame for a core error code: 429 is RATE_LIMIT, a failure of the server SERVER_ERROR. */
  refuseFor(code: number | undefined): void {
    if (code === ErrorCode.TooMany) this.refuse(RandomChatError.RateLimit);
    else if (code !== undefined && code >= 500) this.refuse(RandomChatError.ServerError);
  }

  protected translate(type: string, body: Body): string | undefined {
    switch (type) {
      case "matched":
        this.onMatched(body);
        return undefined;
      case "peer_left":
        this.onPeerLeft(body);
        return undefined;
      case "error": {
        // A close notice (max_message_size, shutting down, ...) says nothing the close code does not.
        const payload = body.payload as { code?: unknown; close_code?: unknown } | undefined;
        return payload?.code === ErrorCode.TooMany && payload.close_code === undefined ? errorFrame(RandomChatError.RateLimit) : undefined;
      }
      default:
        // Nothing else of the core's vocabulary has a meaning here.
        return undefined;
    }
  }

  /** Queues a match ticket in the lobby that avoids the last partner; the pair it forms gets its own room. */
  private wait(): void {
    this.phase = "waiting";
    const wait = ++this.waits;
    const payload = {
      namespace: LOBBY,
      groupSize: 2,
      criteria: {},
      open: true,
      avoid: this.lastPartner === undefined ? [] : [this.lastPartner],
      groupRoom: GROUP_ROOM_TEMPLATE,
    };
    this.request({ type: "match", payload }, (reply) => {
      if (reply["type"] === "matched") this.onMatched(reply);
      else if (reply["type"] === "error") {
        if (this.phase === "waiting" && this.waits === wait) this.phase = "idle";
        this.refuseFor(errorCodeOf(reply));
      }
    });
  }

  /** Ends the pairing from this side: leaves the room, so the partner hears peer_left. */
  private part(partner: Partner): void {
    this.partner = undefined;
    this.phase = "idle";
    this.lastPartner = partner.identity;
    this.request({ type: "leave", payload: { namespace: partner.room } });
  }

  /** A pair formed with this user in it: as the reply to its own match request, or delivered. */
  private onMatched(body: Body): void {
    const payload = body.payload as { namespace?: unknown; session_id?: unknown; peers?: unknown } | undefined;
    if (payload?.namespace !== LOBBY || typeof payload.session_id !== "string" || !Array.isArray(payload.peers)) return;
    const peers = payload.peers as MemberEntry[];
    const other = peers.find((peer) => peer.fingerprint !== this.identity);
    if (other === undefined) return;
    const room = groupRoomOf(payload.session_id);
    if (this.phase !== "waiting") {
      // The pair formed as this user stopped waiting (its `leave` crossed the match): it leaves the
      // room at once, and the other hears partner-left and waits again.
      this.request({ type: "leave", payload: { namespace: room } });
      return;
    }
    this.phase = "paired";
    this.partner = { identity: other.fingerprint, clientId: clientIdOf(other.fingerprint), room };
    this.sendFrame(matchedFrame(payload.session_id, this.partner.clientId, peers[0]?.fingerprint === this.identity));
  }

  /** Someone left a scope this connection is in: only the partner leaving the pair's room means anything. */
  private onPeerLeft(body: Body): void {
    const partner = this.partner;
    // A peer_left of an earlier pairing's room is stale: it must not end the current one.
    if (partner === undefined || body.namespace !== partner.room || body.from !== partner.identity) return;
    this.sendFrame(PARTNER_LEFT_FRAME);
    this.part(partner);
    if (this.shared.config.randomchatRequeueOnPartnerLeave) this.wait();
  }

  /** An offer, answer or ice from the partner, in the client's words; anything else is dropped. */
  protected signalFrame(t: string, from: string, valueText: string): string | undefined {
    const partner = this.partner;
    if (partner === undefined || from !== partner.identity || !isRelayedType(t)) return undefined;
    return relayedFrame(t, partner.clientId, valueText);
  }
}

