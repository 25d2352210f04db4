/**
 * The wire protocol as the SDK reads and writes it: every server→client message body and every
 * request payload, declared here so that the published `.d.ts` stands alone. The server's own
 * types (src/protocol/server-messages.ts) must fit these: test/unit/sdk-protocol-types.test.ts
 * fails to compile when a server message no longer does.
 */

/** A peer's free-form description, shown in member lists (at most 4 KB as JSON). */
export type Meta = Record<string, unknown>;

/** Match criteria: a flat object of scalars, compared as JSON values. */
export type Criteria = Record<string, string | number | boolean>;

/** One member of a namespace or room, the same in `peer_list`, `peer_joined` and `matched`. */
export interface MemberEntry {
  fingerprint: string;
  alias: string;
  app_type: string;
  meta: Meta;
  /** The peer proved at register that it holds the private key of its public key. */
  verified: boolean;
}

/** One STUN or TURN server, an entry of `RTCConfiguration.iceServers`. */
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

/** The payload of `error`. */
export interface ErrorPayload {
  code: number;
  message: string;
  /** The request type it answers; absent on close notices and on frames refused at the server's edge. */
  ref?: string;
  /** Present when the server closes the connection right after, with this close code. */
  close_code?: number;
}

/** The payload of `registered`. */
export interface RegisteredPayload {
  fingerprint: string;
  alias: string;
  verified: boolean;
  ice_servers?: IceServerEntry[];
  /** Present it in the next `register` of this key to resume this session after a dropped connection. */
  resume_token?: string;
  /** True when the register resumed a suspended session: memberships were kept, buffered messages follow. */
  resumed?: boolean;
  /** Messages for this peer that the server dropped while it was away (its buffer was full). */
  missed?: number;
}

/** The body of each server→client message type: the envelope without `type`. */
export interface ServerBodies {
  challenge: { payload: { nonce: string } };
  registered: { from: string; payload: RegisteredPayload };
  peer_list: { namespace: string; payload: { namespace: string; peers: MemberEntry[]; total: number } };
  peer_joined: { from: string; namespace: string; payload: MemberEntry };
  peer_left: { from: string; namespace: string };
  signal: { from: string; to: string; payload: unknown; ts: number };
  relay: { from: string; to: string; payload: unknown; ts: number };
  broadcast: { from: string; namespace: string; payload: { namespace: string; data: unknown }; ts: number };
  match: { payload: { status: "waiting" | "cancelled"; namespace: string } };
  matched: { namespace: string; payload: { namespace: string; session_id: string; peers: MemberEntry[] }; ts: number };
  room_created: { payload: RoomDescription };
  room_info: { payload: RoomDescription & { peer_count: number } };
  kick: { from: string; payload: { room_id: string; fingerprint: string }; ts: number };
  pong: { ts: number };
  error: { payload: ErrorPayload };
  ok: { payload: { ref: string } };
}

/** A namespace's or room's members as `join`, `join_room` and `discover` answer: the oldest first, `total` the full count. */
export type PeerList = ServerBodies["peer_list"]["payload"];

/** The `type` of every server→client message. */
export type ServerMessageType = keyof ServerBodies;

/** A server→client message as received: its `type` beside its body's fields. */
export type ServerMessage<T extends ServerMessageType = ServerMessageType> = { [K in T]: { type: K } & ServerBodies[K] }[T];

/** The `type` of every client→server request. */
export type RequestType =
  | "challenge"
  | "register"
  | "join"
  | "leave"
  | "signal"
  | "relay"
  | "broadcast"
  | "discover"
  | "match"
  | "match_cancel"
  | "create_room"
  | "join_room"
  | "room_info"
  | "kick"
  | "metadata"
  | "ping"
  | "refresh";

/** A request's envelope fields besides `type`: requests name their scope in `payload`; `signal` and `relay` also carry `to`. */
export interface RequestBody {
  to?: string;
  payload?: unknown;
}

/**
 * The direct reply each request type may get besides `error`. The requests absent here have none:
 * Socket.IO acknowledges them with `ok`; on `/ws` success is silent.
 */
export const REPLY_TYPES: { readonly [T in RequestType]?: readonly ServerMessageType[] } = {
  challenge: ["challenge"],
  register: ["registered"],
  join: ["peer_list"],
  discover: ["peer_list"],
  join_room: ["peer_list"],
  match: ["match", "matched"],
  match_cancel: ["match"],
  create_room: ["room_created"],
  room_info: ["room_info"],
  ping: ["pong"],
  refresh: ["ok"],
};

/** What a register proof signs: this prefix, then the server's nonce, as UTF-8. */
export const PROOF_PREFIX = "peer-server-register:";

/** WebSocket close codes the server uses (and sends as `close_code` in its last `error`). */
export const CloseCode = {
  GoingAway: 1001,
  PolicyViolation: 1008,
  MessageTooBig: 1009,
  TryAgainLater: 1013,
  Replaced: 4001,
  SlowConsumer: 4002,
  TokenExpired: 4003,
  Disconnected: 4004,
} as const;
