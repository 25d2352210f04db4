import { nestsDeeperThan } from "../../protocol/json-depth.ts";
import type { MemberEntry } from "../../protocol/server-messages.ts";

/**
 * The p2p-go-app wire, schema first: what its clients send (read and bounded here), what they are
 * sent (encoded here), and how its names map onto the core's. Nothing here keeps state.
 *
 * Names in the core: a user is the identity `p2p:<id>` (a server-made UUID) with the alias
 * `p2p/<username>`, so usernames are unique in the whole deployment because aliases are; a room is
 * the scope `p2p/<roomId>`. No native name can hold a `:` in an alias or a `/` in a namespace, so
 * p2p users and rooms never meet the native protocol or another dialect.
 */

/** The longest username accepted by IDENTIFY (characters; any characters are allowed). */
export const MAX_USERNAME_LENGTH = 64;
/** The longest roomId accepted by JOIN_ROOM (printable characters only). */
export const MAX_ROOM_ID_LENGTH = 64;
/** The longest toPeerId read from a signaling frame (the ids the server hands out are 36-character UUIDs). */
export const MAX_PEER_ID_LENGTH = 64;
/** Members listed in one ROOM_MEMBERS: the core's largest page. */
export const MAX_LISTED_MEMBERS = 1_000;
/** Time a new connection has to send IDENTIFY, as in the original. */
export const IDENTIFY_TIMEOUT_MS = 5_000;

/** The AUTH_ERROR messages. The first three are the original's, word for word; the rest are ours. */
export const AuthMessage = {
  NotIdentify: "Invalid initial message. Expected type 'IDENTIFY'.",
  Empty: "Username cannot be empty.",
  Taken: "Username already taken.",
  TooLong: `Username must be at most ${MAX_USERNAME_LENGTH} characters.`,
  Timeout: "No IDENTIFY message within 5 seconds.",
  Unavailable: "Server unavailable. Try again later.",
} as const;
export type AuthMessage = (typeof AuthMessage)[keyof typeof AuthMessage];

/** The signaling frames relayed between two users of one room. */
export const SIGNAL_TYPES = ["SDP_OFFER", "SDP_ANSWER", "ICE_CANDIDATE"] as const;
export type SignalType = (typeof SIGNAL_TYPES)[number];

type Fields = Record<string, unknown>;

const isObject = (value: unknown): value is Fields => typeof value === "object" && value !== null && !Array.isArray(value);

// Names.

const IDENTITY_PREFIX = "p2p:";
const SCOPE_PREFIX = "p2p/";

/** The core identity of the user with server id `id`. */
export const identityOf = (id: string): string => IDENTITY_PREFIX + id;
/** The alias that holds `username` for one user in the whole deployment. */
export const aliasOf = (username: string): string => SCOPE_PREFIX + username;
/** The core scope of a room. */
export const scopeOf = (roomId: string): string => SCOPE_PREFIX + roomId;

/** The server id of a p2p identity; undefined for any other identity. */
export function idOf(identity: string): string | undefined {
  return identity.startsWith(IDENTITY_PREFIX) ? identity.slice(IDENTITY_PREFIX.length) : undefined;
}

/** A user as the client knows another: `{id, username}`. */
export interface PeerInfo {
  id: string;
  username: string;
}

/**
 * A room member as its client is told about it: the username it identified with (kept in its meta;
 * its alias without the prefix otherwise). Undefined for a member that is no p2p user.
 */
export function peerOfMember(member: MemberEntry): PeerInfo | undefined {
  const id = idOf(member.fingerprint);
  if (id === undefined) return undefined;
  const username = member.meta["username"];
  return { id, username: typeof username === "string" ? username : member.alias.startsWith(SCOPE_PREFIX) ? member.alias.slice(SCOPE_PREFIX.length) : member.alias };
}

// Inbound.

/**
 * One text frame as a JSON object, or undefined when it is none: invalid JSON, another JSON value,
 * or nested deeper than `maxDepth` (max_json_depth). Such a frame is ignored (or, as the first
 * frame, refused like any frame that is not IDENTIFY).
 */
export function decodeFrame(text: string, maxDepth: number): Fields | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isObject(value) || nestsDeeperThan(value, maxDepth)) return undefined;
  return value;
}

/**
 * The username of a first frame, or the AUTH_ERROR message refusing it. As in the original, a
 * missing or null username is empty and a non-string one makes the frame invalid; any characters
 * are allowed, at most MAX_USERNAME_LENGTH of them.
 */
export function readIdentify(frame: Fields | undefined): { username: string } | { refused: AuthMessage } {
  if (frame === undefined || frame["type"] !== "IDENTIFY") return { refused: AuthMessage.NotIdentify };
  const username = frame["username"] ?? "";
  if (typeof username !== "string") return { refused: AuthMessage.NotIdentify };
  if (username.length === 0) return { refused: AuthMessage.Empty };
  if (username.length > MAX_USERNAME_LENGTH) return { refused: AuthMessage.TooLong };
  return { username };
}

/** True when `text` holds a control character (C0, DEL or C1): not allowed in a roomId. */
function hasControl(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x20 || (code >= 0x7f && code <= 0x9f)) return true;
  }
  return false;
}

/**
 * The roomId of a JOIN_ROOM, or undefined when the frame is to be ignored: a missing, empty or
 * non-string roomId (as in the original), or one longer than MAX_ROOM_ID_LENGTH or holding a
 * control character (ours).
 */
export function readRoomId(frame: Fields): string | undefined {
  const roomId = frame["roomId"];
  if (typeof roomId !== "string" || roomId.length === 0 || roomId.length > MAX_ROOM_ID_LENGTH || hasControl(roomId)) return undefined;
  return roomId;
}

/** True for a frame type that is relayed. */
export const isSignalType = (type: unknown): type is SignalType => type === "SDP_OFFER" || type === "SDP_ANSWER" || type === "ICE_CANDIDATE";

/** The key of the value a signaling frame carries: its description (`sdp`) or candidate (`iceCandidate`). */
export const signalKey = (type: SignalType): "sdp" | "iceCandidate" => (type === "ICE_CANDIDATE" ? "iceCandidate" : "sdp");

/**
 * The target id and the value (description or candidate, exactly as the client sent it: every
 * field kept, `usernameFragment`, a null `sdpMid`) of a signaling frame, or undefined when it is to
 * be ignored: a missing, empty or overlong `toPeerId`, or a value that is not an object.
 * `fromPeerId` is never read from the client: the core says who sent it.
 */
export function readSignal(type: SignalType, frame: Fields): { toPeerId: string; value: Fields } | undefined {
  const toPeerId = frame["toPeerId"];
  if (typeof toPeerId !== "string" || toPeerId.length === 0 || toPeerId.length > MAX_PEER_ID_LENGTH) return undefined;
  const value = frame[signalKey(type)];
  return isObject(value) ? { toPeerId, value } : undefined;
}

// Outbound: field order as the original wrote them.

/** `AUTH_ERROR`: the username is always empty, as in the original. */
export const authError = (message: AuthMessage): string => JSON.stringify({ type: "AUTH_ERROR", status: "error", username: "", message });

export const authSuccess = (username: string): string => JSON.stringify({ type: "AUTH_SUCCESS", status: "success", username });

/** The reply to JOIN_ROOM: every other member, oldest first. */
export const roomMembers = (roomId: string, members: PeerInfo[]): string => JSON.stringify({ type: "ROOM_MEMBERS", roomId, members });

export const newPeerInRoom = (roomId: string, peer: PeerInfo): string => JSON.stringify({ type: "NEW_PEER_IN_ROOM", roomId, peer });

export const userLeftRoom = (roomId: string, peer: PeerInfo): string => JSON.stringify({ type: "USER_LEFT_ROOM", roomId, peer });

/**
 * A relayed signaling frame: `{type, fromPeerId, sdp}` or `{type, fromPeerId, iceCandidate}`, the
 * original's frame without its `toPeerId` (the recipient's own id, which is never sent to its
 * owner; the client does not read it), around the value's text as its sender sent it. The sender
 * id is a UUID the server made: nothing to escape.
 */
export function relayedSignal(type: SignalType, fromPeerId: string, valueText: string): string {
  return `{"type":"${type}","fromPeerId":"${fromPeerId}","${signalKey(type)}":${valueText}}`;
}
