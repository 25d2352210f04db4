import type { Logger } from "./logger.ts";
import { LogSampler } from "./log-sampler.ts";

/** A connection's warn lines of one kind: at most one per connection this often (ms). */
const PER_CONNECTION_MS = 10_000;
/** Lines a second for the whole process, per kind of sampled event. */
const PER_PROCESS_PER_SEC = 10;
/** The longest refusal reason written at debug (server-made text; a client's type name may be in it). */
const MAX_REASON_CHARS = 200;
const DEBUG = 20;
const INFO = 30;

/** How a connection ended, as its transport saw it. */
export interface ConnectionEnd {
  /** The WebSocket close code (the server's, or the client's); undefined when there was none (a Socket.IO client leaving). */
  readonly code: number | undefined;
  readonly reason: string;
  /** Whether the server ended it (a close code of its own, a keepalive timeout), not the client. */
  readonly byServer: boolean;
  /** Set when the server's own stop ended it (its shutdown closes every connection). */
  readonly serverStop?: true;
}

/** An open connection as its lines name it. */
export interface LoggedConnection {
  /** The connection id: the same on every line about the connection (`conn`). */
  readonly id: string;
  readonly transport: string;
  readonly remoteAddress?: string | undefined;
}

/**
 * The log lines about client connections, one object per process shared by the core and the
 * transports. Every line carries `conn`, the connection id; nothing is logged per message except
 * refusals, and nothing is built for a line whose level is off.
 *
 * - info: `connection opened` (transport, address), `registered` (fingerprint, alias, takeover:
 *   whether it replaced a live connection, and then `replacedConn`), `connection closed`
 *   (transport, address, fingerprint, code, reason, by, durationMs, and `rateLimited`: how many of
 *   its messages got 429 for its rate limit, when any did).
 * - warn, sampled (see LogSampler): `rate limited` (at most one line per connection every 10 s),
 *   `slow consumer`, `connection refused` (max_peers, shutting down); at most 10 lines a second
 *   each for the process, and each line's `suppressed` counts the events of its kind without a line
 *   since the previous one.
 * - debug: `request refused`, each error reply to a request (code, ref: the request type when it
 *   is one, reason: the error's message); never the request's content.
 */
export class ConnectionLog {
  private readonly rateLimits: LogSampler;
  private readonly slowConsumers: LogSampler;
  private readonly refusals: LogSampler;

  constructor(
    private readonly logger: Logger,
    now: () => number,
  ) {
    this.rateLimits = new LogSampler({ keyIntervalMs: PER_CONNECTION_MS, maxPerSecond: PER_PROCESS_PER_SEC, now });
    this.slowConsumers = new LogSampler({ keyIntervalMs: 0, maxPerSecond: PER_PROCESS_PER_SEC, now });
    this.refusals = new LogSampler({ keyIntervalMs: 0, maxPerSecond: PER_PROCESS_PER_SEC, now });
  }

  opened(connection: LoggedConnection): void {
    if (this.logger.levelVal > INFO) return;
    this.logger.info({ conn: connection.id, transport: connection.transport, address: connection.remoteAddress }, "connection opened");
  }

  /** A connection refused as it arrived (it gets error 503 and close `code`). */
  refusedConnection(connection: LoggedConnection, code: number, reason: string): void {
    const suppressed = this.refusals.take("");
    if (suppressed === undefined) return;
    this.logger.warn({ conn: connection.id, transport: connection.transport, address: connection.remoteAddress, code, reason, suppressed }, "connection refused");
  }

  /** `replacedConn`: the id of the live connection with the same key that this one replaced, if any. */
  registered(connection: LoggedConnection, fingerprint: string, alias: string, replacedConn: string | undefined): void {
    if (this.logger.levelVal > INFO) return;
    this.logger.info({ conn: connection.id, fingerprint, alias, takeover: replacedConn !== undefined, replacedConn }, "registered");
  }

  /** An error reply to a request; `ref` only when it is a request type (`isRequestType`), else undefined. */
  refusedRequest(connection: LoggedConnection, code: number, ref: string | undefined, reason: string): void {
    if (this.logger.levelVal > DEBUG) return;
    this.logger.debug({ conn: connection.id, code, ref, reason: reason.length > MAX_REASON_CHARS ? reason.slice(0, MAX_REASON_CHARS) : reason }, "request refused");
  }

  /** A message dropped with 429 for the connection's rate limit (its budget, or its queue). */
  rateLimited(connection: LoggedConnection, ref: string | undefined): void {
    const suppressed = this.rateLimits.take(connection.id);
    if (suppressed === undefined) return;
    this.logger.warn({ conn: connection.id, transport: connection.transport, ref, suppressed }, "rate limited");
  }

  /** A connection closed with 4002: it stopped reading and its outgoing queue passed send_buffer_size. */
  slowConsumer(connection: LoggedConnection, fingerprint: string | undefined): void {
    const suppressed = this.slowConsumers.take("");
    if (suppressed === undefined) return;
    this.logger.warn({ conn: connection.id, transport: connection.transport, address: connection.remoteAddress, fingerprint, suppressed }, "slow consumer");
  }

  /** The connection's end; forgets what the samplers kept about it. */
  closed(connection: LoggedConnection, fingerprint: string | undefined, end: ConnectionEnd | undefined, durationMs: number): void {
    const rateLimited = this.rateLimits.forget(connection.id);
    if (this.logger.levelVal > INFO) return;
    this.logger.info(
      {
        conn: connection.id,
        transport: connection.transport,
        address: connection.remoteAddress,
        fingerprint,
        code: end?.code,
        reason: end?.reason,
        by: end === undefined ? undefined : end.byServer ? "server" : "client",
        durationMs,
        rateLimited: rateLimited === 0 ? undefined : rateLimited,
      },
      "connection closed",
    );
  }
}
