import type { CloseCode, ErrorCode } from "./errors.ts";
import type { Meta } from "./requests.ts";

/**
 * Every server→client message, schema first: ServerBodies gives each type's body (the envelope
 * without `type`, which is how Socket.IO emits it; `/ws` sends `{"type": ..., ...body}`), and
 * ServerMessage is their union tagged on `type`. The core builds messages against these types;
 * the transports only encode them (protocol/envelope.ts).
 */

/** One member of a namespace or room, the same in peer_list, peer_joined and matched. */
export interface MemberEntry {
  fingerprint: string;
  alias: string;
  app_type: string;
  meta: Meta;
  /** True when the peer proved that it holds the private key of its public_key at register. */
  verified: boolean;
}

/** One STUN or TURN server, an entry of `RTCConfiguration.iceServers` (TURN with a time-limited username and credential). */
export interface IceServerEntry {
  urls: readonly string[];
  username?: string;
  credential?: string;
}

/** A private room as `room_created` and `room_info` describe it. */
export interface RoomDescription {
  room_id: string;
  max_size: number;
  owner: string;
}

/** The payload of `error`. `ref` is absent on messages refused at the edge and on close notices. */
export interface ErrorPayload {
  code: ErrorCode;
  message: string;
  ref?: string;
  /** Present when the server closes the connection right after, with this code. */
  close_code?: CloseCode;
}

/** The body of each server→client message type. */
export interface ServerBodies {
  /** The reply to `challenge`: base64url of 32 random bytes, to sign in this connection's next `register` within 60 s. */
  challenge: { payload: { nonce: string } };
  /**
   * The reply to `register`, and again after a state loss changed the alias. `verified`: the
   * register carried a valid proof of key possession. `ice_servers`, when the server is configured
   * with STUN or TURN, is ready for `RTCPeerConnection({iceServers})`. With resume on (native
   * peers): `resume_token`, to present in the `register` that resumes this registration after a
   * drop, and `resumed`; when true, `missed` counts the buffered messages dropped meanwhile, and
   * the buffered ones follow this reply.
   */
  registered: {
    from: string;
    payload: {
      fingerprint: string;
      alias: string;
      verified: boolean;
      resume_token?: string;
      resumed?: boolean;
      missed?: number;
      ice_servers?: IceServerEntry[];
    };
  };
  /** The reply to `join`, `join_room` and `discover`: the oldest members first, `total` the full count. */
  peer_list: { namespace: string; payload: { namespace: string; peers: MemberEntry[]; total: number } };
  peer_joined: { from: string; namespace: string; payload: MemberEntry };
  peer_left: { from: string; namespace: string };
  /** `payload` is the sender's, forwarded untouched. */
  signal: { from: string; to: string; payload: unknown; ts: number };
  relay: { from: string; to: string; payload: unknown; ts: number };
  broadcast: { from: string; namespace: string; payload: { namespace: string; data: unknown }; ts: number };
  /** The reply to `match` while waiting, and to `match_cancel`. */
  match: { payload: { status: "waiting" | "cancelled"; namespace: string } };
  /** To every member of a group, the request that completed it included (as its reply). */
  matched: { namespace: string; payload: { namespace: string; session_id: string; peers: MemberEntry[] }; ts: number };
  room_created: { payload: RoomDescription };
  room_info: { payload: RoomDescription & { peer_count: number } };
  /** To the peer kicked out of a room. */
  kick: { from: string; payload: { room_id: string; fingerprint: string }; ts: number };
  pong: { ts: number };
  error: { payload: ErrorPayload };
  /** A Socket.IO acknowledgement of a request that has no direct reply; and the reply to `refresh`. */
  ok: { payload: { ref: string } };
}

/** The `type` of every server→client message. */
export type ServerMessageType = keyof ServerBodies;
/** The body of one server→client message type. */
export type ServerBody<T extends ServerMessageType> = ServerBodies[T];
/** A server→client message in transport-neutral form, tagged on `type`. */
export type ServerMessage<T extends ServerMessageType = ServerMessageType> = { [K in T]: { readonly type: K; readonly body: ServerBodies[K] } }[T];

/** The body of an `error`; `ref` names the request it answers, when there is one. */
export function errorBody(code: ErrorCode, message: string, ref?: string): ServerBody<"error"> {
  return { payload: ref === undefined ? { code, message } : { code, message, ref } };
}

/** The peer_list of a namespace or room from a page of its members. */
export function peerList(name: string, page: { peers: MemberEntry[]; total: number }): ServerMessage<"peer_list"> {
  return { type: "peer_list", body: { namespace: name, payload: { namespace: name, peers: page.peers, total: page.total } } };
}
