import { randomBytes } from "node:crypto";
import { parseDurationMs } from "../config/duration.ts";

/** A request of the admin API, as the admin listener (or the cluster primary, over IPC) hands it over. */
export interface AdminRequest {
  readonly method: string;
  /** The path with its query string, as the request line has it (`/admin/namespaces/lobby?limit=10`). */
  readonly path: string;
  /** The request's body as text; "" for none. */
  readonly body: string;
}

/** The admin API's answer: an HTTP status and a JSON body as text ("" for none). */
export interface AdminAnswer {
  readonly status: number;
  readonly body: string;
  /** The methods the path takes, for the `Allow` header of a 405. */
  readonly allow?: string;
}

/** A member of a namespace or room, as the store lists it. */
export interface AdminMember {
  readonly fingerprint: string;
  readonly alias: string;
  readonly app_type: string;
  readonly meta: Readonly<Record<string, unknown>>;
}

/** A registered peer, as the store holds it. */
export interface AdminPeer {
  readonly fingerprint: string;
  readonly alias: string;
  readonly connectionId: string;
  readonly nodeId: string;
  readonly meta: Readonly<Record<string, unknown>>;
  /** Its registration proved possession of the key. */
  readonly verified: boolean;
  readonly scopes: readonly { readonly name: string; readonly room: boolean; readonly app_type: string }[];
}

/** A ban, as the store keeps it (times in ms since the epoch). */
export interface AdminBan {
  readonly id: string;
  readonly kind: "fingerprint" | "ip";
  readonly value: string;
  readonly reason: string;
  readonly createdAt: number;
  readonly expiresAt: number;
}

/**
 * What the admin API reads and does, given by the server it runs in (src/server.ts): the
 * deployment's shared state and the server's reach to every process. A rejection whose `code` is
 * an HTTP status (the protocol's ProtocolError: 404, 503...) is answered with that status and its
 * message; any other is a 500.
 */
export interface AdminSource {
  /** The body of `GET /stats` for the whole deployment, each worker listing its peers when `peers`. */
  stats(peers: boolean): Promise<unknown>;
  /** The registered peers, and the member count of each public namespace. */
  namespaces(): Promise<{ readonly totalPeers: number; readonly namespaces: Readonly<Record<string, number>> }>;
  /** The members of a namespace or room, oldest first, `limit` of them after the `offset` oldest; any name, rooms included. */
  members(name: string, limit: number, offset: number): Promise<{ readonly peers: readonly AdminMember[]; readonly total: number }>;
  /** A room's figures; rejects with code 404 when no room has that name. */
  room(roomId: string): Promise<{ readonly room_id: string; readonly peer_count: number; readonly max_size: number; readonly owner: string }>;
  /** A registered fingerprint's record; undefined when it is not registered. */
  peer(fingerprint: string): Promise<AdminPeer | undefined>;
  /** Closes the peer's connection wherever it is (error 403, close 4004); undefined when it is not registered. */
  disconnect(fingerprint: string, reason: string): Promise<AdminPeer | undefined>;
  addBan(ban: AdminBan): Promise<void>;
  /** The bans in force, oldest first. */
  listBans(): Promise<readonly AdminBan[]>;
  /** Lifts a ban; false when none in force has that id. */
  removeBan(id: string): Promise<boolean>;
  /**
   * Makes every process of the deployment take the bans up now: read them again and close the
   * connections they cover. Resolves with how many connections were closed.
   */
  bansChanged(): Promise<number>;
  /** A client address in its normal form (trust/client-address.ts normalizeAddress); undefined for text that is no IP address. */
  normalizeAddress(text: string): string | undefined;
  /** Wall-clock ms since the epoch. */
  now(): number;
}

export interface AdminApiOptions {
  /** A new ban's id. Default: 16 random hex digits. */
  newId?: () => string;
  /** Told of each failure answered 500 (a bug, or a backend failing unexpectedly). */
  onError?: (error: unknown) => void;
}

/** Every operation of the admin API. */
export type AdminOperation = "stats" | "namespaces" | "namespace" | "room" | "peer" | "disconnect" | "listBans" | "addBan" | "removeBan";

/** What a path and method name: an operation (with the path's one parameter, decoded), or the error status to answer. */
export type AdminMatch =
  | { readonly operation: AdminOperation; readonly param: string; readonly query: URLSearchParams }
  | { readonly status: 400 | 404 | 405; readonly message: string; readonly allow?: string };

/** The routes: path segments after `/admin/` (`:` stands for one parameter) and the operation of each method. */
const ROUTES: readonly { readonly segments: readonly string[]; readonly methods: Readonly<Record<string, AdminOperation>> }[] = [
  { segments: ["stats"], methods: { GET: "stats" } },
  { segments: ["namespaces"], methods: { GET: "namespaces" } },
  { segments: ["namespaces", ":"], methods: { GET: "namespace" } },
  { segments: ["rooms", ":"], methods: { GET: "room" } },
  { segments: ["peers", ":"], methods: { GET: "peer" } },
  { segments: ["peers", ":", "disconnect"], methods: { POST: "disconnect" } },
  { segments: ["bans"], methods: { GET: "listBans", POST: "addBan" } },
  { segments: ["bans", ":"], methods: { DELETE: "removeBan" } },
];

/** The path prefix every admin API route is under. */
export const ADMIN_PREFIX = "/admin/";

/** Members listed per page unless `limit` says otherwise, and the most `limit` may ask. */
export const DEFAULT_PAGE = 100;
export const MAX_PAGE = 1_000;
/** Bans in force at once: each process reads them all every few seconds. */
export const MAX_BANS = 10_000;
/** The shortest and the longest ban. */
export const MIN_BAN_MS = 1_000;
export const MAX_BAN_MS = 365 * 24 * 3_600_000;
/** The longest `reason`, in characters, and the longest fingerprint a ban names. */
const MAX_REASON = 200;
const MAX_FINGERPRINT = 256;

/**
 * Finds the operation of a method and path (with its query string): 404 for a path no route has,
 * 405 (with the methods it takes) for a path that takes other methods, 400 for a parameter that is
 * not valid percent-encoding. Parameters are single path segments, percent-decoded.
 */
export function matchAdminPath(method: string, path: string): AdminMatch {
  const queryAt = path.indexOf("?");
  const pathname = queryAt === -1 ? path : path.slice(0, queryAt);
  const query = new URLSearchParams(queryAt === -1 ? "" : path.slice(queryAt + 1));
  if (!pathname.startsWith(ADMIN_PREFIX)) return { status: 404, message: "not found" };
  const segments = pathname.slice(ADMIN_PREFIX.length).split("/");
  for (const route of ROUTES) {
    if (route.segments.length !== segments.length) continue;
    let param: string | undefined;
    let fits = true;
    for (let index = 0; index < segments.length && fits; index++) {
      const expected = route.segments[index];
      const actual = segments[index] as string;
      if (expected !== ":") fits = expected === actual;
      else if (actual === "") fits = false;
      else param = actual;
    }
    if (!fits) continue;
    const operation = Object.hasOwn(route.methods, method) ? route.methods[method] : undefined;
    if (operation === undefined) return { status: 405, message: "method not allowed", allow: Object.keys(route.methods).join(", ") };
    if (param === undefined) return { operation, param: "", query };
    try {
      return { operation, param: decodeURIComponent(param), query };
    } catch {
      return { status: 400, message: "the path is not valid percent-encoding" };
    }
  }
  return { status: 404, message: "not found" };
}

/** An answer the request itself earned (400, 404, 409): thrown inside an operation, answered as it is. */
class Refusal extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The admin API: every `/admin/...` request, answered from `source`. Pure HTTP shape and input
 * checks; what it reads and does is the source's.
 */
export function adminApi(source: AdminSource, options: AdminApiOptions = {}): (request: AdminRequest) => Promise<AdminAnswer> {
  const newId = options.newId ?? (() => randomBytes(8).toString("hex"));
  const operations: { readonly [O in AdminOperation]: (param: string, query: URLSearchParams, body: string) => Promise<AdminAnswer> } = {
    async stats(_param, query) {
      return json(200, await source.stats(query.get("detail") === "peers"));
    },
    async namespaces() {
      const stats = await source.namespaces();
      return json(200, { total_peers: stats.totalPeers, namespaces: stats.namespaces });
    },
    async namespace(name, query) {
      const { limit, offset } = pageOf(query);
      const [page, isRoom] = await Promise.all([source.members(name, limit, offset), source.room(name).then(() => true, notFoundAs(false))]);
      if (isRoom || page.total === 0) throw new Refusal(404, "no such namespace");
      return json(200, { namespace: name, total: page.total, offset, limit, members: page.peers });
    },
    async room(roomId, query) {
      const { limit, offset } = pageOf(query);
      const info = await source.room(roomId).catch(notFoundAs(undefined));
      if (info === undefined) throw new Refusal(404, "no such room");
      const page = await source.members(roomId, limit, offset);
      return json(200, { ...info, total: page.total, offset, limit, members: page.peers });
    },
    async peer(fingerprint) {
      const peer = await source.peer(fingerprint);
      if (peer === undefined) throw new Refusal(404, "peer is not registered");
      return json(200, peerView(peer));
    },
    async disconnect(fingerprint, _query, body) {
      const fields = objectOf(body, ["reason"]);
      const reason = fields["reason"] === undefined ? "" : reasonOf(fields["reason"]);
      const peer = await source.disconnect(fingerprint, reason);
      if (peer === undefined) throw new Refusal(404, "peer is not registered");
      return json(200, { fingerprint: peer.fingerprint, alias: peer.alias, node_id: peer.nodeId, disconnected: true });
    },
    async listBans() {
      return json(200, { bans: (await source.listBans()).map(banView) });
    },
    async addBan(_param, _query, body) {
      const ban = banOf(objectOf(body, ["fingerprint", "ip", "duration", "reason"]), source, newId());
      if ((await source.listBans()).length >= MAX_BANS) throw new Refusal(409, `at most ${MAX_BANS} bans may be in force`);
      await source.addBan(ban);
      const disconnected = await source.bansChanged();
      return json(201, { ...banView(ban), disconnected });
    },
    async removeBan(id) {
      if (!(await source.removeBan(id))) throw new Refusal(404, "no such ban");
      await source.bansChanged();
      return { status: 204, body: "" };
    },
  };

  return async (request) => {
    const match = matchAdminPath(request.method, request.path);
    if ("status" in match) return { ...json(match.status, { error: match.message }), ...(match.allow === undefined ? {} : { allow: match.allow }) };
    try {
      return await operations[match.operation](match.param, match.query, request.body);
    } catch (error) {
      if (error instanceof Refusal) return json(error.status, { error: error.message });
      const code = (error as { code?: unknown } | undefined)?.code;
      if (typeof code === "number" && code >= 400 && code <= 599 && code !== 500) return json(code, { error: (error as Error).message });
      options.onError?.(error);
      return json(500, { error: "internal error" });
    }
  };
}

const json = (status: number, body: unknown): AdminAnswer => ({ status, body: JSON.stringify(body) });

/** A rejection with code 404 as `value`; any other goes on. */
const notFoundAs =
  <T>(value: T) =>
  (error: unknown): T => {
    if ((error as { code?: unknown } | undefined)?.code === 404) return value;
    throw error;
  };

/** `limit` (1..MAX_PAGE, default DEFAULT_PAGE) and `offset` (default 0) of a members page. */
function pageOf(query: URLSearchParams): { limit: number; offset: number } {
  const limit = integerOf(query.get("limit"), DEFAULT_PAGE);
  const offset = integerOf(query.get("offset"), 0);
  if (limit === undefined || limit < 1 || limit > MAX_PAGE) throw new Refusal(400, `limit must be an integer from 1 to ${MAX_PAGE}`);
  if (offset === undefined) throw new Refusal(400, "offset must be an integer from 0");
  return { limit, offset };
}

function integerOf(text: string | null, fallback: number): number | undefined {
  if (text === null) return fallback;
  if (!/^\d{1,15}$/.test(text)) return undefined;
  return Number(text);
}

/** A body that is a JSON object with only `known` fields ("" is an empty one). */
function objectOf(body: string, known: readonly string[]): Record<string, unknown> {
  if (body.trim() === "") return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    throw new Refusal(400, "the body is not valid JSON");
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new Refusal(400, "the body must be a JSON object");
  const fields = parsed as Record<string, unknown>;
  for (const key of Object.keys(fields)) if (!known.includes(key)) throw new Refusal(400, `unknown field "${key}"; known: ${known.join(", ")}`);
  return fields;
}

function reasonOf(value: unknown): string {
  if (typeof value !== "string" || value.length > MAX_REASON) throw new Refusal(400, `"reason" must be a string of at most ${MAX_REASON} characters`);
  return value;
}

/** The ban a `POST /admin/bans` body asks for, made now. */
function banOf(fields: Record<string, unknown>, source: AdminSource, id: string): AdminBan {
  const { fingerprint, ip } = fields;
  if ((fingerprint === undefined) === (ip === undefined)) throw new Refusal(400, 'give either "fingerprint" or "ip"');
  let kind: AdminBan["kind"];
  let value: string;
  if (fingerprint !== undefined) {
    if (typeof fingerprint !== "string" || fingerprint.length === 0 || fingerprint.length > MAX_FINGERPRINT || /[\s\p{Cc}]/u.test(fingerprint)) {
      throw new Refusal(400, `"fingerprint" must be a string of 1 to ${MAX_FINGERPRINT} characters without spaces`);
    }
    kind = "fingerprint";
    value = fingerprint;
  } else {
    const normal = typeof ip === "string" ? source.normalizeAddress(ip) : undefined;
    if (normal === undefined) throw new Refusal(400, '"ip" must be an IPv4 or IPv6 address');
    kind = "ip";
    value = normal;
  }
  const durationMs = fields["duration"] === undefined ? undefined : parseDurationMs(fields["duration"]);
  if (durationMs === undefined || durationMs < MIN_BAN_MS || durationMs > MAX_BAN_MS) {
    throw new Refusal(400, `"duration" must be a duration from 1s to ${MAX_BAN_MS / 3_600_000}h, such as "10m" or "24h"`);
  }
  const reason = fields["reason"] === undefined ? "" : reasonOf(fields["reason"]);
  const createdAt = source.now();
  return { id, kind, value, reason, createdAt, expiresAt: createdAt + Math.round(durationMs) };
}

function banView(ban: AdminBan): Record<string, unknown> {
  return {
    id: ban.id,
    [ban.kind]: ban.value,
    reason: ban.reason,
    created_at: new Date(ban.createdAt).toISOString(),
    expires_at: new Date(ban.expiresAt).toISOString(),
  };
}

function peerView(peer: AdminPeer): Record<string, unknown> {
  return {
    fingerprint: peer.fingerprint,
    alias: peer.alias,
    node_id: peer.nodeId,
    connection_id: peer.connectionId,
    meta: peer.meta,
    verified: peer.verified,
    scopes: peer.scopes,
  };
}
