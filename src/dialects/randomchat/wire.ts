import { memberText } from "../../protocol/json-span.ts";
import { nestsDeeperThan } from "../../protocol/json-depth.ts";

/**
 * The random video-chat server's wire, as its clients speak it: JSON text frames tagged on
 * `type`. Client → server: auth, available, offer, answer, ice, next, leave, ping. Server →
 * client: ready, matched, partner-left, pong, error, and the relayed offer / answer / ice.
 */

/** The `code` of an `{"type":"error"}` frame. */
export const RandomChatError = {
  UnknownType: "UNKNOWN_TYPE",
  /** Not JSON, not an object, no string `type`, a field of the wrong kind, or nested deeper than max_json_depth. */
  InvalidFormat: "INVALID_FORMAT",
  NotPaired: "NOT_PAIRED",
  AlreadyPaired: "ALREADY_PAIRED",
  RateLimit: "RATE_LIMIT",
  /** Ours: a configured token is missing or wrong (randomchat_auth_token). */
  Unauthorized: "UNAUTHORIZED",
  /** Ours: the server could not do what was asked (a backend it needs is unavailable); the client may retry. */
  ServerError: "SERVER_ERROR",
} as const;
export type RandomChatError = (typeof RandomChatError)[keyof typeof RandomChatError];

/** The prefix of a random-chat user's identity in the core (the kind `/stats` counts). */
const IDENTITY_PREFIX = "randomchat:";
/** The open queue every waiting user is in (a name with a `/`, which no native namespace can hold). */
export const LOBBY = "randomchat/lobby";
/** The private room a pair shares, as the core's match request names it: `{session}` is the pair's session id. */
export const GROUP_ROOM_TEMPLATE = "randomchat/{session}";

export const identityOf = (clientId: string): string => IDENTITY_PREFIX + clientId;
/** The clientId of an identity, as the other user is told it. */
export const clientIdOf = (identity: string): string => (identity.startsWith(IDENTITY_PREFIX) ? identity.slice(IDENTITY_PREFIX.length) : identity);
export const groupRoomOf = (sessionId: string): string => GROUP_ROOM_TEMPLATE.replace("{session}", sessionId);

/** Longest `userId` kept from `auth`. */
export const MAX_USER_ID_LENGTH = 128;

// Frames sent as is: built once.
export const PONG_FRAME = '{"type":"pong"}';
export const PARTNER_LEFT_FRAME = '{"type":"partner-left"}';

const ERROR_MESSAGES: Readonly<Record<RandomChatError, string>> = {
  UNKNOWN_TYPE: "Unknown message type",
  INVALID_FORMAT: "Invalid message format",
  NOT_PAIRED: "Not paired with anyone",
  ALREADY_PAIRED: "Already paired",
  RATE_LIMIT: "Rate limit exceeded",
  UNAUTHORIZED: "Unauthorized",
  SERVER_ERROR: "Server error, try again",
};
const ERROR_FRAMES = new Map<RandomChatError, string>(
  Object.entries(ERROR_MESSAGES).map(([code, message]) => [code as RandomChatError, JSON.stringify({ type: "error", code, message })]),
);

/** The `error` frame of a code, with its standard message. */
export const errorFrame = (code: RandomChatError): string => ERROR_FRAMES.get(code) as string;

export const readyFrame = (clientId: string): string => JSON.stringify({ type: "ready", clientId });

/** `initiator`: true for exactly one of the two (the one who waited longer); the original sent no role. */
export const matchedFrame = (roomId: string, partnerId: string, initiator: boolean): string => JSON.stringify({ type: "matched", roomId, partnerId, initiator });

/** The three messages a pair exchange, and the field each carries. */
export const RELAYED = { offer: "sdp", answer: "sdp", ice: "candidate" } as const;
export type RelayedType = keyof typeof RELAYED;
export const isRelayedType = (type: unknown): type is RelayedType => type === "offer" || type === "answer" || type === "ice";

/**
 * An offer, answer or ice as the partner receives it: `{type, from, sdp}` or `{type:"ice", from,
 * candidate}`, around the value's text as its sender sent it (the client id is a UUID the server
 * made: nothing to escape).
 */
export function relayedFrame(type: RelayedType, fromClientId: string, valueText: string): string {
  return `{"type":"${type}","from":"${fromClientId}","${RELAYED[type]}":${valueText}}`;
}

/** One client frame, checked. */
export type ClientFrame =
  | { readonly type: "auth"; readonly userId: string | undefined; readonly token: unknown }
  | { readonly type: "available" | "next" | "leave" | "ping" }
  | { readonly type: RelayedType; readonly value: unknown; readonly valueText: string | undefined };

/** A frame refused at the edge, with the error its client gets. */
export interface RefusedFrame {
  readonly refused: RandomChatError;
}

/**
 * Reads one text frame. Invalid JSON, anything but an object, a missing or non-string `type`, or
 * nesting deeper than `maxDepth` is INVALID_FORMAT; a type the original did not know is
 * UNKNOWN_TYPE. The relayed value (`sdp`, `candidate`) is kept as sent, whatever JSON it is.
 */
export function parseFrame(text: string, maxDepth: number): ClientFrame | RefusedFrame {
  let message: unknown;
  try {
    message = JSON.parse(text);
  } catch {
    return INVALID;
  }
  if (typeof message !== "object" || message === null || Array.isArray(message) || nestsDeeperThan(message, maxDepth)) return INVALID;
  const fields = message as Record<string, unknown>;
  const type = fields["type"];
  if (typeof type !== "string") return INVALID;
  switch (type) {
    case "available":
    case "next":
    case "leave":
    case "ping":
      return SIMPLE[type];
    case "offer":
    case "answer":
    case "ice":
      return { type, value: fields[RELAYED[type]], valueText: memberText(text, RELAYED[type]) };
    case "auth": {
      const userId = fields["userId"];
      if (userId === undefined || userId === null) return { type, userId: undefined, token: fields["token"] };
      if (typeof userId !== "string" || userId.length > MAX_USER_ID_LENGTH) return INVALID;
      return { type, userId, token: fields["token"] };
    }
    default:
      return UNKNOWN;
  }
}

const INVALID: RefusedFrame = Object.freeze({ refused: RandomChatError.InvalidFormat });
const UNKNOWN: RefusedFrame = Object.freeze({ refused: RandomChatError.UnknownType });
const SIMPLE = {
  available: Object.freeze({ type: "available" }),
  next: Object.freeze({ type: "next" }),
  leave: Object.freeze({ type: "leave" }),
  ping: Object.freeze({ type: "ping" }),
} as const;
