import type { IncomingMessage, Server as HttpServer, ServerResponse } from "node:http";
import type { Socket } from "node:net";

/** Schedules a callback; the returned function cancels it (calling it after the callback ran is harmless). */
export type SetTimer = (callback: () => void, ms: number) => () => void;

export const systemTimer: SetTimer = (callback, ms) => {
  const timer = setTimeout(callback, ms);
  return () => clearTimeout(timer);
};

/** How long a timed-out connection keeps its socket after the 408, so that the client can read it. */
export const TIMED_OUT_LINGER_MS = 1_000;

export const REQUEST_TIMEOUT_ANSWER = "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";

export interface RequestDeadlineOptions {
  /** The request head must be complete this long after the connection arrives (TLS: after the handshake), in ms. */
  headerTimeoutMs: number;
  /** The whole request (head and body) must be complete this long after the connection arrives, in ms. */
  readTimeoutMs: number;
  /** The server terminates TLS: the HTTP parser reads the socket of 'secureConnection', not of 'connection'. */
  tls: boolean;
  setTimer?: SetTimer;
}

interface Pending {
  request: IncomingMessage | undefined;
  response: ServerResponse | undefined;
  cancelHead: () => void;
  cancelRequest: () => void;
}

/**
 * Absolute header and request deadlines for an HTTP server that does not listen, and gets its
 * connections by `emit("connection", socket)` (a cluster worker over TLS, from the primary): Node
 * enforces headersTimeout and requestTimeout from a checker it starts on 'listening', so such a
 * server has none, and a client sending a header line every few seconds keeps its socket forever.
 * The primary cannot read TLS requests, so these are their only deadlines. (Over plain HTTP a
 * worker's own router enforces both and hands its HTTP server complete requests: it needs none.)
 *
 * As Node does, a connection whose head is not complete at headerTimeoutMs, or whose request is
 * not complete at readTimeoutMs, is answered 408 (only closed if its response has begun). One
 * request per connection is watched: the cluster's responses all carry `Connection: close`.
 * Upgraded connections leave HTTP and are not watched. Must be called after Engine.IO attaches (it
 * takes over the 'request' listeners present at that time).
 */
export function enforceRequestDeadlines(server: HttpServer, options: RequestDeadlineOptions): void {
  const setTimer = options.setTimer ?? systemTimer;
  const pending = new WeakMap<Socket, Pending>();

  const finish = (socket: Socket): void => {
    const entry = pending.get(socket);
    if (entry === undefined) return;
    pending.delete(socket);
    socket.removeListener("close", onClose);
    entry.cancelHead();
    entry.cancelRequest();
  };
  // One listener for every socket, removed once its request is done: an upgraded connection would
  // otherwise carry it (and what it holds) for as long as it lives.
  function onClose(this: Socket): void {
    finish(this);
  }
  const expire = (socket: Socket): void => {
    const entry = pending.get(socket);
    if (entry === undefined) return;
    finish(socket);
    if (entry.request?.complete === true) return;
    if (entry.response?.headersSent !== true) {
      // Then close, even if the client neither reads nor closes its side.
      const destroy = setTimer(() => socket.destroy(), TIMED_OUT_LINGER_MS);
      socket.once("close", destroy);
      socket.end(REQUEST_TIMEOUT_ANSWER, () => socket.destroy());
    } else {
      socket.destroy();
    }
  };

  server.on(options.tls ? "secureConnection" : "connection", (socket: Socket) => {
    pending.set(socket, {
      request: undefined,
      response: undefined,
      cancelHead: setTimer(() => expire(socket), options.headerTimeoutMs),
      cancelRequest: setTimer(() => expire(socket), options.readTimeoutMs),
    });
    socket.once("close", onClose);
  });
  server.on("request", (request: IncomingMessage, response: ServerResponse) => {
    const entry = pending.get(request.socket);
    if (entry === undefined) return;
    entry.request = request;
    entry.response = response;
    entry.cancelHead();
  });
  server.on("upgrade", (request: IncomingMessage) => finish(request.socket));
}
