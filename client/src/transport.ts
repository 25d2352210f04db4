import type { PeerError } from "./errors.ts";
import type { RequestBody, RequestType, ServerMessage } from "./protocol.ts";

/** How a connection ended: the WebSocket close code when there is one, and a reason for humans. */
export interface ConnectionEnd {
  code: number | undefined;
  reason: string;
  /** The close code the server announced in its last `error` before closing, if it did. */
  announced: number | undefined;
}

/** What a transport tells its owner. */
export interface TransportHandlers {
  /** A message that answers no request of this transport: a notice for the application. */
  message(message: ServerMessage): void;
  /** The connection ended (called once, and not after the owner's own `close()`). */
  closed(end: ConnectionEnd): void;
}

/**
 * One connection to the server, over raw `/ws` or Socket.IO, with one request API: each request
 * resolves with its direct reply (undefined for a request that has none) or rejects with a
 * PeerError. A transport is used for one connection; reconnecting makes a new one.
 */
export interface Transport {
  /** Resolves once the connection is open; rejects when it cannot be opened. */
  open(): Promise<void>;
  request(type: RequestType, body: RequestBody, timeoutMs: number): Promise<ServerMessage | undefined>;
  /** Closes the connection; pending requests fail with `error`. No `closed` call follows. */
  close(error: PeerError): void;
}

/**
 * An event handler property. Checked bivariantly (the type of a method), so that the `ws` package's
 * and the DOM's WebSocket, whose handlers take their own richer event types, both fit.
 */
type Handler<E> = { handle(event: E): void }["handle"];

/** A minimal browser-style WebSocket, which the browser's and the `ws` package's both are. */
export interface WebSocketLike {
  readonly readyState: number;
  onopen: Handler<unknown> | null;
  onmessage: Handler<{ data: unknown }> | null;
  onclose: Handler<{ code: number; reason: string }> | null;
  onerror: Handler<unknown> | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

/** A WebSocket constructor: the global one in browsers; in Node 20 pass `ws`'s (`import WebSocket from "ws"`). */
export type WebSocketConstructor = new (url: string) => WebSocketLike;
