import type { IncomingMessage } from "node:http";
import { performance } from "node:perf_hooks";
import type { Server as EngineServer, Socket as EngineSocket } from "engine.io";
import type { Config } from "../config/load.ts";
import { requestToken, type AccessClaims, type AccessTokenVerifier } from "../trust/access-tokens.ts";
import { clientAddressResolver, type ClientAddress } from "../trust/client-address.ts";
import { originPolicy, type OriginPolicy } from "../trust/origins.ts";
import { AddressHold, AddressQuota, QUOTA_REFUSALS, type QuotaVerdict } from "./address-quota.ts";

/** A connection refused before it exists: the HTTP status it is answered with, and why. */
export interface GateRefusal {
  readonly status: 401 | 403 | 429 | 503;
  readonly reason: string;
}

/** A connection let in: its client address (normal form) and what its access token grants (tokens on). */
export interface GateAdmission {
  readonly address: string | undefined;
  readonly claims: AccessClaims | undefined;
}

export type GateVerdict = GateAdmission | GateRefusal;

export const isRefusal = (verdict: GateVerdict): verdict is GateRefusal => "status" in verdict;

/**
 * Counts a new connection of `address` against its per-address limits: the hold to release when
 * it ends (bound to the request's socket already), undefined when it is let in uncounted (counted
 * elsewhere, or not at all), or why it is refused.
 */
export type CountConnection = (request: IncomingMessage, address: string) => AddressHold | undefined | Exclude<QuotaVerdict, "ok">;

export interface ConnectionGateOptions {
  /** The Origins a browser may connect from (allowed_origins). */
  readonly origins: OriginPolicy;
  /** Verifies access tokens; undefined when none is needed. */
  readonly tokens: AccessTokenVerifier | undefined;
  /** The client address of a request (trusted_proxies). */
  readonly clientAddress: ClientAddress;
  /** Whether an address is banned (BanList.addressBanned). */
  readonly addressBanned: (address: string | undefined) => boolean;
  /** The per-address count of new connections (max_connections_per_ip, connection_rate_per_ip). */
  readonly count: CountConnection;
}

const BANNED: GateRefusal = { status: 403, reason: "banned" };
const FOREIGN_ORIGIN: GateRefusal = { status: 403, reason: "origin not allowed" };
const REFUSED_BY_QUOTA: Readonly<Record<Exclude<QuotaVerdict, "ok">, GateRefusal>> = {
  rate: { status: 429, reason: QUOTA_REFUSALS.rate },
  count: { status: 429, reason: QUOTA_REFUSALS.count },
};
const SESSION_ID = /[?&]sid=/;

/**
 * The checks every new connection passes before it exists, on every path: the WebSocket upgrade of
 * /ws and of the dialects, and Engine.IO's requests (long-polling and WebSocket). In order:
 *
 * 1. the per-address limits (429), for a new connection or Engine.IO session only (not the later
 *    requests of a long-polling session): counted here, or by the cluster primary before the
 *    connection reached this process (`count`); refused attempts spend nothing;
 * 2. a ban of the client address (403 `banned`), on every request;
 * 3. the `Origin` (403), on every request: a browser page of a foreign site is refused, a request
 *    without `Origin` passes;
 * 4. the access token (401; 503 when its keys cannot be fetched): here for the WebSocket paths,
 *    where it comes with the upgrade (`Authorization: Bearer` or `?token=`); for Socket.IO at its
 *    connect, whose handshake may carry it (`auth.token`), in the binding's middleware.
 *
 * A connection refused after it was counted is released at once. The client address is the
 * socket's, or what trusted proxies forwarded (trust/client-address.ts), in normal form: what bans,
 * limits and logs use.
 */
export class ConnectionGate {
  private readonly addresses = new WeakMap<IncomingMessage, string | undefined>();
  /** The count of each new Engine.IO session's handshake request, until its session exists. */
  private readonly pending = new WeakMap<IncomingMessage, AddressHold>();

  constructor(private readonly options: ConnectionGateOptions) {}

  /** The Origins a browser may connect from: also what Socket.IO's CORS answers allow. */
  get origins(): OriginPolicy {
    return this.options.origins;
  }

  /** True when connections need an access token. */
  get tokensRequired(): boolean {
    return this.options.tokens !== undefined;
  }

  /** The client address of a request, in normal form (computed once per request). */
  addressOf(request: IncomingMessage): string | undefined {
    if (this.addresses.has(request)) return this.addresses.get(request);
    const forwarded = request.headers["x-forwarded-for"];
    const address = this.options.clientAddress(request.socket.remoteAddress, Array.isArray(forwarded) ? forwarded.join(",") : forwarded);
    this.addresses.set(request, address);
    return address;
  }

  /**
   * Checks a WebSocket upgrade of /ws or a dialect's path, token included. Synchronous when no
   * token is needed (no promise per connection), else a promise that never rejects.
   */
  admitWebSocket(request: IncomingMessage): GateVerdict | Promise<GateVerdict> {
    const entry = this.enter(request);
    if ("status" in entry) return entry;
    const { tokens } = this.options;
    if (tokens === undefined) return { address: entry.address, claims: undefined };
    return tokens.verify(requestToken(request.url, request.headers.authorization)).then((verdict) => {
      if (verdict.ok) return { address: entry.address, claims: verdict.claims };
      entry.hold?.release();
      return { status: verdict.status, reason: verdict.reason };
    });
  }

  /**
   * Checks a request of Engine.IO (a long-polling request or a WebSocket upgrade) before Engine.IO
   * sees it: undefined lets it through. A new session's count waits for the session (watchSessions).
   */
  checkEngineRequest(request: IncomingMessage): GateRefusal | undefined {
    // Only a GET without a session id can open a session (Engine.IO's handshake); a CORS preflight cannot.
    if (request.method !== "GET" || SESSION_ID.test(request.url ?? "")) return this.banOrOrigin(request, this.addressOf(request));
    const entry = this.enter(request);
    if ("status" in entry) return entry;
    if (entry.hold !== undefined) this.pending.set(request, entry.hold);
    return undefined;
  }

  /**
   * Checks the access token of a Socket.IO connection: its handshake's `auth.token`, else the
   * handshake request's Bearer header or `?token=`. Never rejects.
   */
  async admitSocketIo(request: IncomingMessage, authToken: unknown): Promise<GateVerdict> {
    const address = this.addressOf(request);
    const { tokens } = this.options;
    if (tokens === undefined) return { address, claims: undefined };
    const token = typeof authToken === "string" ? authToken : requestToken(request.url, request.headers.authorization);
    const verdict = await tokens.verify(token);
    return verdict.ok ? { address, claims: verdict.claims } : { status: verdict.status, reason: verdict.reason };
  }

  /**
   * Moves each new session's count from its handshake's socket to the session, which outlives it
   * (long-polling: every request has a socket of its own); a handshake that fails releases it.
   */
  watchSessions(engine: EngineServer): void {
    engine.on("connection", (session: EngineSocket) => {
      const hold = this.pending.get(session.request);
      if (hold === undefined) return;
      this.pending.delete(session.request);
      hold.bindTo(session);
    });
    engine.on("connection_error", (error: { req?: IncomingMessage }) => {
      if (error.req === undefined) return;
      this.pending.get(error.req)?.release();
      this.pending.delete(error.req);
    });
  }

  /** Steps 1 to 3 for a new connection: its count (released again if a later step refuses it), or the refusal. */
  private enter(request: IncomingMessage): { address: string | undefined; hold: AddressHold | undefined } | GateRefusal {
    const address = this.addressOf(request);
    let hold: AddressHold | undefined;
    if (address !== undefined) {
      const counted = this.options.count(request, address);
      if (typeof counted === "string") return REFUSED_BY_QUOTA[counted];
      hold = counted;
    }
    const refusal = this.banOrOrigin(request, address);
    if (refusal === undefined) return { address, hold };
    hold?.release();
    return refusal;
  }

  private banOrOrigin(request: IncomingMessage, address: string | undefined): GateRefusal | undefined {
    if (this.options.addressBanned(address)) return BANNED;
    if (!this.options.origins.allowed(request.headers.origin)) return FOREIGN_ORIGIN;
    return undefined;
  }
}

/**
 * The gate of a server process from its configuration. The per-address limits are counted here,
 * in this process's memory, unless `countedByPrimary` is given: then a cluster primary counted each
 * connection as it handed it over (the hold it took, undefined when it did not count it).
 */
export function createConnectionGate(
  config: Pick<Config, "allowedOrigins" | "trustedProxies" | "maxConnectionsPerIp" | "connectionRatePerIp" | "connectionBurstPerIp">,
  options: {
    readonly tokens: AccessTokenVerifier | undefined;
    readonly addressBanned: (address: string | undefined) => boolean;
    readonly countedByPrimary?: ((request: IncomingMessage) => AddressHold | undefined) | undefined;
  },
): ConnectionGate {
  let count: CountConnection;
  if (options.countedByPrimary !== undefined) count = options.countedByPrimary;
  else {
    const quota = new AddressQuota({
      maxConnections: config.maxConnectionsPerIp,
      ratePerSec: config.connectionRatePerIp,
      burst: config.connectionBurstPerIp,
      now: () => performance.now(),
    });
    const release = (address: string): void => quota.release(address);
    count = (request, address) => {
      const verdict = quota.take(address);
      if (verdict !== "ok") return verdict;
      const hold = new AddressHold(address, release);
      hold.bindTo(request.socket);
      return hold;
    };
  }
  return new ConnectionGate({
    origins: originPolicy(config.allowedOrigins),
    tokens: options.tokens,
    clientAddress: clientAddressResolver(config.trustedProxies),
    addressBanned: options.addressBanned,
    count,
  });
}
