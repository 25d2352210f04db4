import type { ReceivedEnvelope } from "./envelope.ts";
import { badRequest } from "./errors.ts";

/**
 * Every client→server request, schema first: each request's type, with the validator that
 * produces it written next to it, then ClientRequest (their union, tagged on `type`) and
 * REQUEST_VALIDATORS, the one table from a wire type to its validator, which
 * protocol/decoder.ts uses for every transport. A validator reads an envelope's fields and
 * returns the typed request, or throws a 400 ProtocolError whose message names the bad field.
 */

/** A peer's free-form description, shown in member lists: at most 4 KB as JSON. */
export type Meta = Record<string, unknown>;
/** Match criteria: a flat object of scalars, compared as JSON values. */
export type Criteria = Record<string, string | number | boolean>;

/** Bounds the protocol sets on input (docs/protocol.md, "Bounded input"). */
export const LIMITS = {
  maxAliasLength: 32,
  maxNameLength: 64,
  maxPublicKeyLength: 16_384,
  /** A register's `signature`: the longest accepted one (DER ECDSA, 72 bytes) is 96 characters of base64. */
  maxSignatureLength: 256,
  /** A register's `resume_token`: the server's are 43 characters (32 bytes of base64url). */
  maxResumeTokenLength: 128,
  maxMetaBytes: 4_096,
  maxAppTypeLength: 64,
  maxToLength: 128,
  joinListLimit: 50,
  discoverDefaultLimit: 50,
  discoverMaxLimit: 1_000,
  roomDefaultSize: 20,
  roomMaxSize: 30,
  groupMin: 2,
  groupMax: 32,
  maxExclude: 1_000,
  maxCriteriaKeys: 32,
} as const;

// Field rules: each reads one field of a payload, returns it typed, or throws a 400 naming it.

const NAME = /^[A-Za-z0-9_.:-]{1,64}$/;
const ALIAS = /^[A-Za-z0-9_-]{1,32}$/;
const FINGERPRINT = /^[0-9a-fA-F]{64}$/;
/** Standard or URL-safe base64, padding optional. */
const BASE64 = /^[A-Za-z0-9+/_-]+={0,2}$/;

const isFingerprintLike = (value: string): boolean => FINGERPRINT.test(value);
/**
 * A `to` that can only name a native peer by its alias (a fingerprint is 64 hex digits; a dialect
 * identity has a `kind:` prefix). An alias has at most 32 characters, so it is never fingerprint-like,
 * and a fingerprint (every signal's usual `to`) is told apart by its length, without a pattern test.
 */
export const isAliasName = (value: string): boolean => value.length <= LIMITS.maxAliasLength && ALIAS.test(value);

type Fields = Record<string, unknown>;

function asObject(value: unknown, what: string): Fields {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw badRequest(`${what} must be an object`);
  return value as Fields;
}

/**
 * An optional field left empty: absent, `null` or `""`. The original server read `alias: ""` as
 * "not given" (its own client sends it when its user set none); every optional string, object and
 * array field takes these three alike. Three comparisons: no allocation per message.
 */
const isUnset = (value: unknown): boolean => value === undefined || value === null || value === "";

/** An absent payload is an empty one: `{"type":"ping"}` and `emit("discover")` need none. */
const payloadOf = (payload: unknown): Fields => asObject(payload ?? {}, "payload");

function optionalString(fields: Fields, key: string, maxLength: number): string | undefined {
  const value = fields[key];
  if (isUnset(value)) return undefined;
  if (typeof value !== "string") throw badRequest(`${key} must be a string`);
  if (value.length > maxLength) throw badRequest(`${key} must be at most ${maxLength} characters`);
  return value;
}

function name(fields: Fields, key: string): string {
  const value = fields[key];
  if (typeof value !== "string") throw badRequest(`${key} is required`);
  if (!NAME.test(value)) throw badRequest(`${key} must be 1-64 characters of A-Z a-z 0-9 _ . : -`);
  return value;
}

function optionalInt(fields: Fields, key: string): number | undefined {
  const value = fields[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "number" || !Number.isInteger(value)) throw badRequest(`${key} must be an integer`);
  return value;
}

/** An optional count (`limit`, `max_size`): `0` reads as unset, since no page or room holds zero peers, so the default applies. */
function optionalCount(fields: Fields, key: string): number | undefined {
  const value = optionalInt(fields, key);
  return value === 0 ? undefined : value;
}

/** Serialized size of a meta object; used for the 4 KB cap. */
const metaBytes = (meta: Meta): number => Buffer.byteLength(JSON.stringify(meta));

function optionalMeta(fields: Fields, key: string): Meta | undefined {
  const value = fields[key];
  if (isUnset(value)) return undefined;
  const meta = asObject(value, key);
  if (metaBytes(meta) > LIMITS.maxMetaBytes) throw badRequest(`${key} must serialize to at most ${LIMITS.maxMetaBytes} bytes`);
  return meta;
}

// The requests.

/**
 * `register {public_key, alias?, meta?, signature?}`. `alias` absent, null or "": one is generated.
 * `signature`: the proof of key possession, base64 or base64url (see trust/key-proof.ts).
 */
export interface RegisterRequest {
  publicKey: string;
  alias: string | undefined;
  meta: Meta | undefined;
  /** Absent when the register is not signed (always, for a dialect identity). */
  signature?: string;
  /** `resume_token`: the token of an earlier registration of this key, to resume it (see core/resumption.ts). */
  resumeToken?: string;
  /**
   * A dialect's identity, used as the fingerprint as is (`pigeon:<peerId>`, `p2p:<id>`, ...): set by
   * dialect bindings only, never by the validator. Without an alias the identity is the alias too.
   */
  identity?: string;
}
function parseRegister(payload: unknown): RegisterRequest {
  const fields = payloadOf(payload);
  const publicKey = fields["public_key"];
  if (typeof publicKey !== "string" || publicKey.length === 0) throw badRequest("public_key is required");
  if (publicKey.length > LIMITS.maxPublicKeyLength) throw badRequest("public_key is too long");
  const alias = optionalString(fields, "alias", LIMITS.maxAliasLength);
  if (alias !== undefined) {
    if (!ALIAS.test(alias)) throw badRequest("alias must be 1-32 characters of A-Z a-z 0-9 _ -");
    if (isFingerprintLike(alias)) throw badRequest("alias must not look like a fingerprint");
  }
  const signature = optionalString(fields, "signature", LIMITS.maxSignatureLength);
  if (signature !== undefined && !BASE64.test(signature)) throw badRequest("signature must be base64 or base64url");
  const meta = optionalMeta(fields, "meta");
  const resumeToken = optionalString(fields, "resume_token", LIMITS.maxResumeTokenLength);
  if (resumeToken !== undefined && !BASE64.test(resumeToken)) throw badRequest("resume_token must be base64url");
  const request: RegisterRequest = { publicKey, alias, meta };
  if (signature !== undefined) request.signature = signature;
  if (resumeToken !== undefined) request.resumeToken = resumeToken;
  return request;
}

/** `join {namespace, app_type?, meta?, version?}`; `version` is checked, then ignored. */
export interface JoinRequest {
  namespace: string;
  /** "" when absent, null or "". */
  appType: string;
  meta: Meta | undefined;
  /** The peer leaves every other namespace and room first: one scope at a time (dialects; never from the wire). */
  exclusive?: boolean;
  /** Members listed in the reply; default LIMITS.joinListLimit (dialects list more; never from the wire). */
  listLimit?: number;
}
function parseJoin(payload: unknown): JoinRequest {
  const fields = payloadOf(payload);
  optionalString(fields, "version", LIMITS.maxAppTypeLength);
  return {
    namespace: name(fields, "namespace"),
    appType: optionalString(fields, "app_type", LIMITS.maxAppTypeLength) ?? "",
    meta: optionalMeta(fields, "meta"),
  };
}

/** `leave {namespace}` and `match_cancel {namespace}`. */
export interface NamespaceRequest {
  namespace: string;
}
const parseNamespace = (payload: unknown): NamespaceRequest => ({ namespace: name(payloadOf(payload), "namespace") });

/** `join_room {room_id}` and `room_info {room_id}`. */
export interface RoomRequest {
  roomId: string;
}
const parseRoom = (payload: unknown): RoomRequest => ({ roomId: name(payloadOf(payload), "room_id") });

/**
 * `signal` / `relay` with `to`: a payload for one peer, forwarded untouched. Unlike the other
 * requests it keeps the envelope's own shape, `to` beside `payload`: this is the hot path, and one
 * object per message is all it costs.
 */
export interface TargetedRequest<T extends "signal" | "relay" = "signal" | "relay"> {
  readonly type: T;
  /** A fingerprint (lowercased) or an alias; the hub resolves it as a fingerprint first. */
  readonly to: string;
  readonly payload: Fields;
  /** The payload's text exactly as received, when the transport kept it (raw /ws): forwarded without serializing again. */
  readonly payloadJson: string | undefined;
}
function parseTargeted<T extends "signal" | "relay">(type: T, to: unknown, payload: unknown, payloadJson: string | undefined): TargetedRequest<T> {
  if (typeof to !== "string" || to.length === 0) throw badRequest("to is required");
  if (to.length > LIMITS.maxToLength) throw badRequest("to is too long");
  if (typeof payload !== "object" || payload === null || Array.isArray(payload)) throw badRequest("payload must be an object");
  // Only a 64-character `to` can be a fingerprint: skip the pattern test for aliases.
  return { type, to: to.length === 64 && isFingerprintLike(to) ? to.toLowerCase() : to, payload: payload as Fields, payloadJson };
}

/** `broadcast {namespace, data, exclude?}`; `exclude` holds fingerprints (lowercased). */
export interface BroadcastRequest {
  namespace: string;
  /** null when absent. */
  data: unknown;
  exclude: string[];
}
function parseBroadcast(payload: unknown): BroadcastRequest {
  const fields = payloadOf(payload);
  const namespace = name(fields, "namespace");
  const exclude = fields["exclude"];
  let excluded: string[] = [];
  if (!isUnset(exclude)) {
    if (!Array.isArray(exclude) || exclude.length > LIMITS.maxExclude || !exclude.every((item) => typeof item === "string")) {
      throw badRequest(`exclude must be an array of at most ${LIMITS.maxExclude} fingerprints`);
    }
    excluded = (exclude as string[]).map((fingerprint) => fingerprint.toLowerCase());
  }
  return { namespace, data: fields["data"] ?? null, exclude: excluded };
}

/** `discover {namespace, limit?}`; `limit` absent, null or 0 is 50; it is lowered to 1,000. */
export interface DiscoverRequest {
  namespace: string;
  limit: number;
}
function parseDiscover(payload: unknown): DiscoverRequest {
  const fields = payloadOf(payload);
  const limit = optionalCount(fields, "limit") ?? LIMITS.discoverDefaultLimit;
  if (limit < 1) throw badRequest("limit must be at least 1");
  return { namespace: name(fields, "namespace"), limit: Math.min(limit, LIMITS.discoverMaxLimit) };
}

/** `match {namespace, group_size, criteria?}`: criteria are a flat object of scalars. */
export interface MatchRequest {
  namespace: string;
  groupSize: number;
  criteria: Criteria;
  /** Dialects only, never from the wire: see MatchTicket.avoid. */
  avoid?: readonly string[];
  /** Dialects only, never from the wire: see MatchTicket.open. */
  open?: boolean;
  /** Dialects only, never from the wire: the name of the room a completed group enters (MatchTicket.groupRoom), where `{session}` stands for the group's session id. */
  groupRoom?: string;
}
function parseMatch(payload: unknown): MatchRequest {
  const fields = payloadOf(payload);
  const namespace = name(fields, "namespace");
  const groupSize = optionalInt(fields, "group_size");
  if (groupSize === undefined) throw badRequest("group_size is required");
  if (groupSize < LIMITS.groupMin || groupSize > LIMITS.groupMax) {
    throw badRequest(`group_size must be between ${LIMITS.groupMin} and ${LIMITS.groupMax}`);
  }
  const raw = isUnset(fields["criteria"]) ? {} : asObject(fields["criteria"], "criteria");
  const keys = Object.keys(raw);
  if (keys.length > LIMITS.maxCriteriaKeys) throw badRequest(`criteria may have at most ${LIMITS.maxCriteriaKeys} keys`);
  for (const key of keys) {
    const value = raw[key];
    if (typeof value !== "string" && typeof value !== "boolean" && !(typeof value === "number" && Number.isFinite(value))) {
      throw badRequest("criteria values must be strings, numbers or booleans");
    }
  }
  return { namespace, groupSize, criteria: raw as Criteria };
}

/** `create_room {room_id?, max_size?}`; `max_size` absent, null or 0 is 20; it is lowered to 30. */
export interface CreateRoomRequest {
  /** undefined (absent, null or ""): the hub generates one. */
  roomId: string | undefined;
  maxSize: number;
}
function parseCreateRoom(payload: unknown): CreateRoomRequest {
  const fields = payloadOf(payload);
  const roomId = isUnset(fields["room_id"]) ? undefined : name(fields, "room_id");
  const requested = optionalCount(fields, "max_size") ?? LIMITS.roomDefaultSize;
  if (requested < 2) throw badRequest("max_size must be at least 2");
  return { roomId, maxSize: Math.min(requested, LIMITS.roomMaxSize) };
}

/** `kick {room_id, fingerprint}`: the target is named by fingerprint only (lowercased). */
export interface KickRequest {
  roomId: string;
  fingerprint: string;
}
function parseKick(payload: unknown): KickRequest {
  const fields = payloadOf(payload);
  const fingerprint = fields["fingerprint"];
  if (typeof fingerprint !== "string" || !isFingerprintLike(fingerprint)) throw badRequest("fingerprint must be a 64-character hex fingerprint");
  return { roomId: name(fields, "room_id"), fingerprint: fingerprint.toLowerCase() };
}

/** `metadata {meta}`: a shallow patch of the peer's meta, where null removes a key; `{}` changes nothing. */
export interface MetadataRequest {
  meta: Meta;
}
function parseMetadata(payload: unknown): MetadataRequest {
  const meta = optionalMeta(payloadOf(payload), "meta");
  if (meta === undefined) throw badRequest("meta is required");
  return { meta };
}

/** A request whose fields are all in its payload. */
interface PayloadRequest<T extends string, P> {
  readonly type: T;
  readonly payload: P;
}

/** `ping`: any payload is ignored. One shared object: it carries nothing. */
export interface PingRequest {
  readonly type: "ping";
}
const PING: PingRequest = Object.freeze({ type: "ping" });

/** `challenge`: asks for a nonce to sign in the next `register`; any payload is ignored. */
export interface ChallengeRequest {
  readonly type: "challenge";
}
const CHALLENGE: ChallengeRequest = Object.freeze({ type: "challenge" });

/** Longest access token a `refresh` may carry. */
const MAX_TOKEN_LENGTH = 8_192;

/** `refresh {token}`: a newer access token for the connection (access tokens on), before its current one expires. */
export interface RefreshRequest {
  token: string;
}
function parseRefresh(payload: unknown): RefreshRequest {
  const token = payloadOf(payload)["token"];
  if (typeof token !== "string" || token.length === 0) throw badRequest("token is required");
  if (token.length > MAX_TOKEN_LENGTH) throw badRequest(`token must be at most ${MAX_TOKEN_LENGTH} characters`);
  return { token };
}

/** Every valid client→server request, tagged on its wire `type`. */
export type ClientRequest =
  | ChallengeRequest
  | PayloadRequest<"register", RegisterRequest>
  | PayloadRequest<"join", JoinRequest>
  | PayloadRequest<"leave", NamespaceRequest>
  | TargetedRequest<"signal">
  | TargetedRequest<"relay">
  | PayloadRequest<"broadcast", BroadcastRequest>
  | PayloadRequest<"discover", DiscoverRequest>
  | PayloadRequest<"match", MatchRequest>
  | PayloadRequest<"match_cancel", NamespaceRequest>
  | PayloadRequest<"create_room", CreateRoomRequest>
  | PayloadRequest<"join_room", RoomRequest>
  | PayloadRequest<"room_info", RoomRequest>
  | PayloadRequest<"kick", KickRequest>
  | PayloadRequest<"metadata", MetadataRequest>
  | PayloadRequest<"refresh", RefreshRequest>
  | PingRequest;

/** The wire `type` of every client→server request. */
export type RequestType = ClientRequest["type"];
/** The validated request of one type. */
export type RequestOf<T extends RequestType> = Extract<ClientRequest, { type: T }>;

/** Builds one request type from an envelope's fields; throws a 400 ProtocolError naming the bad field. */
export type RequestValidator<R extends ClientRequest = ClientRequest> = (envelope: ReceivedEnvelope, payloadJson: string | undefined) => R;

/** The mapped type makes a request type without a validator, or one producing another type, fail to compile. */
const VALIDATORS: { readonly [T in RequestType]: RequestValidator<RequestOf<T>> } = {
  challenge: () => CHALLENGE,
  register: (envelope) => ({ type: "register", payload: parseRegister(envelope.payload) }),
  join: (envelope) => ({ type: "join", payload: parseJoin(envelope.payload) }),
  leave: (envelope) => ({ type: "leave", payload: parseNamespace(envelope.payload) }),
  signal: (envelope, payloadJson) => parseTargeted("signal", envelope.to, envelope.payload, payloadJson),
  relay: (envelope, payloadJson) => parseTargeted("relay", envelope.to, envelope.payload, payloadJson),
  broadcast: (envelope) => ({ type: "broadcast", payload: parseBroadcast(envelope.payload) }),
  discover: (envelope) => ({ type: "discover", payload: parseDiscover(envelope.payload) }),
  match: (envelope) => ({ type: "match", payload: parseMatch(envelope.payload) }),
  match_cancel: (envelope) => ({ type: "match_cancel", payload: parseNamespace(envelope.payload) }),
  create_room: (envelope) => ({ type: "create_room", payload: parseCreateRoom(envelope.payload) }),
  join_room: (envelope) => ({ type: "join_room", payload: parseRoom(envelope.payload) }),
  room_info: (envelope) => ({ type: "room_info", payload: parseRoom(envelope.payload) }),
  kick: (envelope) => ({ type: "kick", payload: parseKick(envelope.payload) }),
  metadata: (envelope) => ({ type: "metadata", payload: parseMetadata(envelope.payload) }),
  refresh: (envelope) => ({ type: "refresh", payload: parseRefresh(envelope.payload) }),
  ping: () => PING,
};

/**
 * Wire type -> validator, built once. A Map, not the object: a type such as `__proto__` or
 * `constructor` must be unknown, not found on Object.prototype.
 */
export const REQUEST_VALIDATORS: ReadonlyMap<string, RequestValidator> = new Map<string, RequestValidator>(Object.entries(VALIDATORS));

/** Canonical text of match criteria: equal criteria give equal text whatever their key order. */
export function canonicalCriteria(criteria: Criteria): string {
  const keys = Object.keys(criteria).sort();
  return JSON.stringify(keys.map((key) => [key, criteria[key]]));
}

/** Shallow merge where null deletes a key; 400 when the result passes the 4 KB cap. */
export function mergeMeta(current: Meta, patch: Meta): Meta {
  const merged: Meta = { ...current };
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete merged[key];
    // Defined, not assigned: a key named "__proto__" is data like any other, never the prototype.
    else Object.defineProperty(merged, key, { value, enumerable: true, writable: true, configurable: true });
  }
  if (metaBytes(merged) > LIMITS.maxMetaBytes) throw badRequest(`meta must serialize to at most ${LIMITS.maxMetaBytes} bytes`);
  return merged;
}
