import { badRequest } from "./errors.ts";

/**
 * Client→server requests, validated at the edge. Each parser takes the raw envelope fields
 * and returns a typed request or throws a 400 ProtocolError naming the bad field.
 */

export type Meta = Record<string, unknown>;
export type Criteria = Record<string, string | number | boolean>;

/** Limits the protocol notes set. */
export const LIMITS = {
  maxAliasLength: 32,
  maxNameLength: 64,
  maxPublicKeyLength: 16_384,
  maxMetaBytes: 4_096,
  maxAppTypeLength: 64,
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

const NAME = /^[A-Za-z0-9_.:-]{1,64}$/;
const ALIAS = /^[A-Za-z0-9_-]{1,32}$/;
const FINGERPRINT = /^[0-9a-fA-F]{64}$/;

export const isFingerprintLike = (value: string): boolean => FINGERPRINT.test(value);

type Fields = Record<string, unknown>;

function asObject(value: unknown, what: string): Fields {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw badRequest(`${what} must be an object`);
  return value as Fields;
}

function optionalString(fields: Fields, key: string, maxLength: number): string | undefined {
  const value = fields[key];
  if (value === undefined || value === null) return undefined;
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

/** Serialized size of a meta object; used for the 4 KB cap. */
export const metaBytes = (meta: Meta): number => Buffer.byteLength(JSON.stringify(meta));

function optionalMeta(fields: Fields, key: string): Meta | undefined {
  const value = fields[key];
  if (value === undefined || value === null) return undefined;
  const meta = asObject(value, key);
  if (metaBytes(meta) > LIMITS.maxMetaBytes) throw badRequest(`${key} must serialize to at most ${LIMITS.maxMetaBytes} bytes`);
  return meta;
}

export const payloadOf = (payload: unknown): Fields => asObject(payload ?? {}, "payload");

export interface RegisterRequest {
  publicKey: string;
  alias: string | undefined;
  meta: Meta | undefined;
}
export function parseRegister(payload: unknown): RegisterRequest {
  const fields = payloadOf(payload);
  const publicKey = fields["public_key"];
  if (typeof publicKey !== "string" || publicKey.length === 0) throw badRequest("public_key is required");
  if (publicKey.length > LIMITS.maxPublicKeyLength) throw badRequest("public_key is too long");
  const alias = optionalString(fields, "alias", LIMITS.maxAliasLength);
  if (alias !== undefined) {
    if (!ALIAS.test(alias)) throw badRequest("alias must be 1-32 characters of A-Z a-z 0-9 _ -");
    if (isFingerprintLike(alias)) throw badRequest("alias must not look like a fingerprint");
  }
  return { publicKey, alias, meta: optionalMeta(fields, "meta") };
}

export interface JoinRequest {
  namespace: string;
  appType: string;
  meta: Meta | undefined;
}
export function parseJoin(payload: unknown): JoinRequest {
  const fields = payloadOf(payload);
  optionalString(fields, "version", LIMITS.maxAppTypeLength);
  return {
    namespace: name(fields, "namespace"),
    appType: optionalString(fields, "app_type", LIMITS.maxAppTypeLength) ?? "",
    meta: optionalMeta(fields, "meta"),
  };
}

export const parseNamespace = (payload: unknown): string => name(payloadOf(payload), "namespace");
export const parseRoomId = (payload: unknown): string => name(payloadOf(payload), "room_id");

export interface TargetedRequest {
  to: string;
  payload: unknown;
}
export function parseTargeted(to: unknown, payload: unknown): TargetedRequest {
  if (typeof to !== "string" || to.length === 0) throw badRequest("to is required");
  if (to.length > 128) throw badRequest("to is too long");
  if (typeof payload !== "object" || payload === null || Array.isArray(payload)) throw badRequest("payload must be an object");
  // Only a 64-character `to` can be a fingerprint: skip the pattern test for aliases.
  return { to: to.length === 64 && isFingerprintLike(to) ? to.toLowerCase() : to, payload };
}

export interface BroadcastRequest {
  namespace: string;
  data: unknown;
  exclude: string[];
}
export function parseBroadcast(payload: unknown): BroadcastRequest {
  const fields = payloadOf(payload);
  const namespace = name(fields, "namespace");
  const exclude = fields["exclude"];
  let excluded: string[] = [];
  if (exclude !== undefined && exclude !== null) {
    if (!Array.isArray(exclude) || exclude.length > LIMITS.maxExclude || !exclude.every((item) => typeof item === "string")) {
      throw badRequest(`exclude must be an array of at most ${LIMITS.maxExclude} fingerprints`);
    }
    excluded = (exclude as string[]).map((fingerprint) => fingerprint.toLowerCase());
  }
  return { namespace, data: fields["data"] ?? null, exclude: excluded };
}

export interface DiscoverRequest {
  namespace: string;
  limit: number;
}
export function parseDiscover(payload: unknown): DiscoverRequest {
  const fields = payloadOf(payload);
  const limit = optionalInt(fields, "limit") ?? LIMITS.discoverDefaultLimit;
  if (limit < 1) throw badRequest("limit must be at least 1");
  return { namespace: name(fields, "namespace"), limit: Math.min(limit, LIMITS.discoverMaxLimit) };
}

export interface MatchRequest {
  namespace: string;
  groupSize: number;
  criteria: Criteria;
}
export function parseMatch(payload: unknown): MatchRequest {
  const fields = payloadOf(payload);
  const namespace = name(fields, "namespace");
  const groupSize = optionalInt(fields, "group_size");
  if (groupSize === undefined) throw badRequest("group_size is required");
  if (groupSize < LIMITS.groupMin || groupSize > LIMITS.groupMax) {
    throw badRequest(`group_size must be between ${LIMITS.groupMin} and ${LIMITS.groupMax}`);
  }
  const raw = fields["criteria"] === undefined || fields["criteria"] === null ? {} : asObject(fields["criteria"], "criteria");
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

export interface CreateRoomRequest {
  roomId: string | undefined;
  maxSize: number;
}
export function parseCreateRoom(payload: unknown): CreateRoomRequest {
  const fields = payloadOf(payload);
  const roomId = fields["room_id"] === undefined || fields["room_id"] === null ? undefined : name(fields, "room_id");
  const requested = optionalInt(fields, "max_size") ?? LIMITS.roomDefaultSize;
  if (requested < 2) throw badRequest("max_size must be at least 2");
  return { roomId, maxSize: Math.min(requested, LIMITS.roomMaxSize) };
}

export interface KickRequest {
  roomId: string;
  fingerprint: string;
}
export function parseKick(payload: unknown): KickRequest {
  const fields = payloadOf(payload);
  const fingerprint = fields["fingerprint"];
  if (typeof fingerprint !== "string" || !isFingerprintLike(fingerprint)) throw badRequest("fingerprint must be a 64-character hex fingerprint");
  return { roomId: name(fields, "room_id"), fingerprint: fingerprint.toLowerCase() };
}

export function parseMetadata(payload: unknown): Meta {
  const fields = payloadOf(payload);
  const meta = optionalMeta(fields, "meta");
  if (meta === undefined) throw badRequest("meta is required");
  return meta;
}

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
