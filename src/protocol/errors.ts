/** Error codes sent in `{"type":"error","payload":{"code":N}}`, as the protocol document defines them. */
export const ErrorCode = {
  BadRequest: 400,
  /**
   * A proof of key possession that does not verify, or none where `key_proof` requires one; an
   * access token that is missing, invalid or expired (the connection's, or a `refresh`'s).
   */
  Unauthorized: 401,
  Forbidden: 403,
  NotFound: 404,
  Conflict: 409,
  /** Rate limited, namespace full or room full. */
  TooMany: 429,
  /** A bug: the handler failed unexpectedly. The connection stays open. */
  Internal: 500,
  /** Server full, or a backend the operation needs is unavailable. */
  Unavailable: 503,
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** WebSocket close codes the server uses on `/ws`. Socket.IO peers get the same code in an `error` payload's `close_code`. */
export const CloseCode = {
  /** Server shutting down. */
  GoingAway: 1001,
  /** No `register` within `pong_wait`. */
  PolicyViolation: 1008,
  /** Frame larger than `max_message_size`. */
  MessageTooBig: 1009,
  /** `max_peers` reached. */
  TryAgainLater: 1013,
  /** Another connection registered the same public key; this one was replaced. */
  Replaced: 4001,
  /** The peer's outgoing queue passed `send_buffer_size`: it stopped reading. */
  SlowConsumer: 4002,
  /** The connection's access token expired (its `exp`) and no `refresh` brought a newer one. */
  TokenExpired: 4003,
  /** Disconnected by the operator (the admin API), or banned: its fingerprint or its address. */
  Disconnected: 4004,
} as const;
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

/**
 * A protocol error: a request refused by the decoder (protocol/decoder.ts) or by a handler. The hub
 * answers it with an `error` envelope in request order; the connection stays.
 */
export class ProtocolError extends Error {
  /**
   * @param ref the type of the request it answers, when it is known where the error is made (the
   * decoder sets it; a handler's errors get theirs from the request the hub dispatched).
   * @param options `cause`: the unexpected failure behind a 500, which the hub logs.
   */
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly ref?: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "ProtocolError";
  }
}

export const badRequest = (message: string): ProtocolError => new ProtocolError(ErrorCode.BadRequest, message);
