import type { ErrorPayload } from "./protocol.ts";

/**
 * Why a request failed without a server answer: `timeout` (no reply in time), `connection_lost`
 * (the connection dropped while it was in flight: it may or may not have been handled), `closed`
 * (the client was closed, or gave up reconnecting, before it could be sent).
 */
export type LocalErrorCode = "timeout" | "connection_lost" | "closed";

/** A refused or failed request: `code` is the server's error code (400, 403, 404, 409, 429, ...) or a LocalErrorCode. */
export class PeerError extends Error {
  constructor(
    readonly code: number | LocalErrorCode,
    message: string,
    /** The request type it answers, when known. */
    readonly ref?: string,
    /** The close code the server announced with it, when it closes the connection. */
    readonly closeCode?: number,
  ) {
    super(message);
    this.name = "PeerError";
  }

  /** The error a server `error` payload describes. */
  static fromPayload(payload: ErrorPayload): PeerError {
    return new PeerError(payload.code, payload.message, payload.ref, payload.close_code);
  }
}
