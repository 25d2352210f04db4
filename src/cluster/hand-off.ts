import type { IncomingMessage, Server as HttpServer } from "node:http";
import type { Socket } from "node:net";
import type { HandOff } from "../protocol/cluster-messages.ts";

/**
 * The worker's end of the router's hand-off (see sticky-router.ts and primary.ts): takes each
 * connection the primary sends with its socket handle (the `connection` message, which the
 * worker's dispatcher passes to `receive`), replays the bytes the router read, and
 * remembers the primary's admission verdict for it. Both ends are ours: the verdict travels with
 * the connection, so `max_peers` holds for the whole machine without a round trip.
 */
export class HandOffReceiver {
  /** Long-lived hand-offs received so far (reported to the primary with the load). */
  private longLivedReceived = 0;
  private httpServer: HttpServer | undefined;
  /** Connections that arrived while the machine was full, by peer address (TLS wraps the socket, the address stays). */
  private readonly overCapacity = new Set<string>();

  /** Starts taking connections for `httpServer`. Call once, before the worker reports ready. */
  attach(httpServer: HttpServer): void {
    // No keep-alive: a second request on a connection must not reach this worker for a session that
    // lives on another one.
    httpServer.prependListener("request", (_request, response) => response.setHeader("Connection", "close"));
    this.httpServer = httpServer;
  }

  /** Takes one hand-off and the socket handle that came with it. */
  receive(message: HandOff, handle: unknown): void {
    if (message.longLived) this.longLivedReceived++;
    // The socket may have closed during the transfer: then there is no handle.
    if (handle === undefined || handle === null) return;
    const socket = handle as Socket;
    // The router hands connections to ready workers only, which attached before they said so.
    if (this.httpServer === undefined) {
      socket.destroy();
      return;
    }
    if (message.full) {
      const key = addressKey(socket);
      this.overCapacity.add(key);
      socket.once("close", () => this.overCapacity.delete(key));
    }
    this.httpServer.emit("connection", socket);
    if (message.data.byteLength > 0) socket.unshift(Buffer.from(message.data.buffer, message.data.byteOffset, message.data.byteLength));
  }

  get handOffsReceived(): number {
    return this.longLivedReceived;
  }

  /** True when the primary found the machine full as this request's connection arrived. */
  isOverCapacity(request: IncomingMessage): boolean {
    return this.overCapacity.size > 0 && this.overCapacity.has(addressKey(request.socket));
  }
}

const addressKey = (socket: Socket): string => `${socket.remoteAddress ?? ""}|${socket.remotePort ?? 0}`;
