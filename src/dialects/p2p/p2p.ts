import { randomUUID } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import type { WebSocket } from "ws";
import { systemClock } from "../../core/context.ts";
import type { Hub } from "../../core/hub.ts";
import type { Session } from "../../core/session.ts";
import type { Body } from "../../protocol/envelope.ts";
import { CloseCode, ErrorCode } from "../../protocol/errors.ts";
import { memberText } from "../../protocol/json-span.ts";
import type { MemberEntry, ServerBody } from "../../protocol/server-messages.ts";
import type { WsConnectionContext } from "../../transport/ws-connection.ts";
import type { WsProtocol } from "../../transport/ws-endpoint.ts";
import { DialectConnection, forwardedSignal } from "../dialect-connection.ts";
import { errorCodeOf, submit, type Dialect, type DialectDeps } from "../dialect.ts";
import {
  AuthMessage,
  IDENTIFY_TIMEOUT_MS,
  MAX_LISTED_MEMBERS,
  aliasOf,
  authError,
  authSuccess,
  decodeFrame,
  idOf,
  identityOf,
  isSignalType,
  newPeerInRoom,
  peerOfMember,
  readIdentify,
  readRoomId,
  readSignal,
  relayedSignal,
  roomMembers,
  signalKey,
  scopeOf,
  userLeftRoom,
  type PeerInfo,
  type SignalType,
} from "./wire.ts";

/** The p2p-go-app WebSocket path. The dialect serves no HTTP. */
export const P2P_WS_PATH = "/p2p/ws";

/** Runs `callback` once after `ms`; the result cancels it (the core's Clock.setTimer). */
export type SetTimer = (callback: () => void, ms: number) => () => void;

/** What a test may change; the defaults are the product's. */
export interface P2pOptions {
  /** Time a new connection has to send IDENTIFY; default IDENTIFY_TIMEOUT_MS (5 s, as the original). */
  identifyTimeoutMs?: number;
  /** Default: unref'd setTimeout. */
  setTimer?: SetTimer;
}

/** The p2p-go-app dialect: its clients served unchanged at P2P_WS_PATH (docs/dialects/p2p.md). */
export function createP2pDialect(deps: DialectDeps, options: P2pOptions = {}): Dialect {
  return { name: "p2p", wsPaths: [P2P_WS_PATH], protocol: new P2pProtocol(deps, options) };
}

/** Where a connection is in its handshake: waiting for IDENTIFY, waiting for the core's answer to it, done. */
type Phase = "new" | "identifying" | "identified";

/**
 * One p2p-go-app user. Its room and what its client was told about the other members live here;
 * the room itself, its members and every delivery live in the core.
 */
export class P2pConnection extends DialectConnection {
  private stage: Phase = "new";
  private ownId = "";
  private ownName = "";
  /** The room of the last JOIN_ROOM the core accepted; undefined before the first. */
  private room: string | undefined;
  /**
   * id -> username of every other member of `room` the client was told about (ROOM_MEMBERS,
   * NEW_PEER_IN_ROOM): names the leaver of a USER_LEFT_ROOM, and only those are announced.
   */
  private readonly told = new Map<string, string>();
  /** Cancels the IDENTIFY deadline; undefined once identified or closed. */
  cancelIdentifyTimer: (() => void) | undefined;

  constructor(id: string, socket: WebSocket, context: WsConnectionContext, tcp: Socket) {
    super(id, "p2p", socket, context, tcp);
  }

  get phase(): Phase {
    return this.stage;
  }

  /** The server-made id others know this user by; never sent to the user itself. "" before IDENTIFY. */
  get peerId(): string {
    return this.ownId;
  }

  /** The username of its IDENTIFY; "" before. */
  get username(): string {
    return this.ownName;
  }

  /** IDENTIFY was read: the core is asked to register the user under `peerId`. */
  identifying(peerId: string, username: string): void {
    this.stage = "identifying";
    this.ownId = peerId;
    this.ownName = username;
  }

  /** The core registered the user. */
  identified(): void {
    this.stage = "identified";
  }

  /** The core accepted a JOIN_ROOM: from now on only this room's news reaches the client. */
  entered(roomId: string, members: readonly PeerInfo[]): void {
    this.room = roomId;
    this.told.clear();
    for (const member of members) this.told.set(member.id, member.username);
  }

  protected override translate(type: string, body: Body): string | undefined {
    switch (type) {
      case "peer_joined":
        return this.peerJoined(body as ServerBody<"peer_joined">);
      case "peer_left":
        return this.peerLeft(body as ServerBody<"peer_left">);
      default:
        // Error notices (the close code says it), pong, and every other core message: the original has no such frame.
        return undefined;
    }
  }

  /** SDP_OFFER, SDP_ANSWER, ICE_CANDIDATE from a member of this room, the value as its sender sent it. */
  protected signalFrame(t: string, from: string, valueText: string): string | undefined {
    const id = idOf(from);
    return id === undefined || !isSignalType(t) ? undefined : relayedSignal(t, id, valueText);
  }

  private peerJoined(body: ServerBody<"peer_joined">): string | undefined {
    if (this.room === undefined || body.namespace !== scopeOf(this.room)) return undefined;
    const peer = peerOfMember(body.payload);
    if (peer === undefined || peer.id === this.peerId) return undefined;
    this.told.set(peer.id, peer.username);
    return newPeerInRoom(this.room, peer);
  }

  private peerLeft(body: ServerBody<"peer_left">): string | undefined {
    if (this.room === undefined || body.namespace !== scopeOf(this.room)) return undefined;
    const id = idOf(body.from);
    const username = id === undefined ? undefined : this.told.get(id);
    if (id === undefined || username === undefined) return undefined;
    this.told.delete(id);
    return userLeftRoom(this.room, { id, username });
  }

  override detach(): void {
    this.cancelIdentifyTimer?.();
    this.cancelIdentifyTimer = undefined;
    super.detach();
  }
}

/**
 * The p2p-go-app frames, turned into core requests: IDENTIFY -> register, JOIN_ROOM -> an
 * exclusive join, SDP_OFFER / SDP_ANSWER / ICE_CANDIDATE -> signal. Everything else a client sends
 * once identified is ignored, as the original did.
 */
class P2pProtocol implements WsProtocol<P2pConnection> {
  readonly name = "p2p";
  private readonly hub: Hub;
  private readonly maxDepth: number;
  private readonly identifyTimeoutMs: number;
  private readonly setTimer: SetTimer;

  constructor(deps: DialectDeps, options: P2pOptions) {
    this.hub = deps.hub;
    this.maxDepth = deps.config.maxJsonDepth;
    this.identifyTimeoutMs = options.identifyTimeoutMs ?? IDENTIFY_TIMEOUT_MS;
    this.setTimer = options.setTimer ?? systemClock.setTimer;
  }

  createConnection(id: string, socket: WebSocket, context: WsConnectionContext, request: IncomingMessage): P2pConnection {
    return new P2pConnection(id, socket, context, request.socket);
  }

  opened(_session: Session, connection: P2pConnection): void {
    connection.cancelIdentifyTimer = this.setTimer(() => {
      if (connection.phase === "new") refuse(connection, AuthMessage.Timeout);
    }, this.identifyTimeoutMs);
  }

  receiveText(session: Session, connection: P2pConnection, text: string): void {
    const frame = decodeFrame(text, this.maxDepth);
    if (connection.phase === "new") {
      this.identify(session, connection, frame);
      return;
    }
    if (frame === undefined) return;
    const type = frame["type"];
    if (type === "JOIN_ROOM") this.joinRoom(session, connection, readRoomId(frame));
    else if (isSignalType(type)) this.signal(session, type, frame, text);
    // CHAT_MESSAGE (chat goes peer to peer), a second IDENTIFY and unknown types: ignored.
  }

  receiveBinary(session: Session, connection: P2pConnection): void {
    // The original refused a binary first frame like any frame that is not IDENTIFY, and skipped later ones.
    if (connection.phase === "new") this.identify(session, connection, undefined);
  }

  /**
   * The first frame: IDENTIFY with a free username registers the user under a fresh id, whose
   * alias holds the username for the whole deployment (the store decides, atomically); anything
   * else is refused with AUTH_ERROR and the socket closed. Frames that follow before the answer
   * are queued behind the registration in the core, so they need not wait here.
   */
  private identify(session: Session, connection: P2pConnection, frame: Record<string, unknown> | undefined): void {
    connection.cancelIdentifyTimer?.();
    connection.cancelIdentifyTimer = undefined;
    const outcome = readIdentify(frame);
    if ("refused" in outcome) {
      refuse(connection, outcome.refused);
      return;
    }
    const { username } = outcome;
    const peerId = randomUUID();
    connection.identifying(peerId, username);
    const payload = { publicKey: "", alias: aliasOf(username), meta: { username }, identity: identityOf(peerId) };
    submit(this.hub, session, { type: "register", payload }, (reply) => {
      if (reply["type"] === "registered") {
        connection.identified();
        connection.sendFrame(authSuccess(username));
      } else {
        refuse(connection, errorCodeOf(reply) === ErrorCode.Conflict ? AuthMessage.Taken : AuthMessage.Unavailable);
      }
    });
  }

  /**
   * JOIN_ROOM: an exclusive join, so the user leaves the room it was in (its members get
   * USER_LEFT_ROOM); joining the room it is in again lists the members again and tells nobody.
   * A refused join (rate limit, backend down) leaves the client unanswered, as a lost frame would.
   */
  private joinRoom(session: Session, connection: P2pConnection, roomId: string | undefined): void {
    if (roomId === undefined) return;
    const payload = { namespace: scopeOf(roomId), appType: "", meta: { username: connection.username }, exclusive: true, listLimit: MAX_LISTED_MEMBERS };
    submit(this.hub, session, { type: "join", payload }, (reply) => {
      if (reply["type"] !== "peer_list") return;
      const members: PeerInfo[] = [];
      for (const member of (reply["payload"] as ServerBody<"peer_list">["payload"]).peers as MemberEntry[]) {
        const peer = peerOfMember(member);
        if (peer !== undefined && peer.id !== connection.peerId) members.push(peer);
      }
      connection.entered(roomId, members);
      connection.sendFrame(roomMembers(roomId, members));
    });
  }

  /**
   * SDP_OFFER, SDP_ANSWER, ICE_CANDIDATE: relayed by the core to the target only when both are in
   * one room. The core's refusals (another room 403, unknown id 404, yourself 400) are dropped
   * silently, as the original dropped an unknown target.
   */
  private signal(session: Session, type: SignalType, frame: Record<string, unknown>, text: string): void {
    const signal = readSignal(type, frame);
    if (signal === undefined) return;
    const { payload, payloadJson } = forwardedSignal(type, signal.value, memberText(text, signalKey(type)));
    submit(this.hub, session, { type: "signal", to: identityOf(signal.toPeerId), payload, payloadJson });
  }
}

/**
 * Ends a connection that failed to identify: AUTH_ERROR first, then close 1008 (policy violation),
 * or 1013 (try again later) when the server could not decide.
 */
function refuse(connection: P2pConnection, message: AuthMessage): void {
  connection.sendFrame(authError(message));
  connection.close(message === AuthMessage.Unavailable ? CloseCode.TryAgainLater : CloseCode.PolicyViolation, message);
}


