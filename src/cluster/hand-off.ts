import type { IncomingMessage, Server as HttpServer } from "node:http";
import type { Socket } from "node:net";
import { AddressHold } from "../limits/address-quota.ts";
import { handOffBytes, type HandOff } from "../protocol/cluster-messages.ts";

/** What the primary decided for a connection it hands over or placed: see HandOff. */
export interface HandOffPlacement {
  readonly longLived: boolean;
  readonly full: boolean;
  readonly quota?: string | undefined;
}

/**
 * The worker's end of a hand-off (see sticky-router.ts and primary.ts): takes each connection the
 * primary sends with its socket handle (the `connection` message, which the worker's dispatcher
 * passes to `receive`), or that the worker's own acceptor placed here (worker-acceptor.ts), replays
 * the bytes read from it, and remembers the primary's admission verdict for it. The verdict
 * travels with the connection, so `max_peers` holds for the whole machine. So does the
 * per-address count: a connection the primary counted against its client address comes with an
 * AddressHold, which reports the connection's end to the primary (`released`) exactly once.
 */
export class HandOffReceiver {
  /** Long-lived hand-offs received so far (reported to the primary with the load). */
  private longLivedReceived = 0;
  private httpServer: HttpServer | undefined;
  /** Connections that arrived while the machine was full, by peer address (TLS wraps the socket, the address stays). */
  private readonly overCapacity = new Set<string>();
  /** The primary's count of each counted connection, until the connection-time checks take it up (`holdOf`). */
  private readonly holds = new WeakMap<Socket, AddressHold>();

  /** @param released reports a counted connection's end to the primary (batched by the caller) */
  constructor(private readonly released: (address: string) => void = () => undefined) {}

  /** Starts taking connections for `httpServer`. Call once, before the worker reports ready. */
  attach(httpServer: HttpServer): void {
    // No keep-alive: a second request on a connection must not reach this worker for a session that
    // lives on another one.
    httpServer.prependListener("request", (_request, response) => response.setHeader("Connection", "close"));
    this.httpServer = httpServer;
  }

  /** Takes one hand-off from the primary and the socket handle that came with it. */
  receive(message: HandOff, handle: unknown): void {
    // The socket may have closed during the transfer: then there is no handle, and no connection.
    const socket = handle === undefined || handle === null ? undefined : (handle as Socket);
    this.take(socket === undefined ? EMPTY : handOffBytes(message), message, socket);
  }

  /**
   * Takes a connection with the bytes already read from it (`bytes`, the request): from the
   * primary (`receive`), or placed here by this worker's own acceptor, which passes the bytes as
   * they are. Without a socket the connection closed on its way: what the primary counted for it
   * is released.
   */
  take(bytes: Buffer, placement: HandOffPlacement, socket: Socket | undefined): void {
    if (placement.longLived) this.longLivedReceived++;
    if (socket === undefined) {
      if (placement.quota !== undefined) this.released(placement.quota);
      return;
    }
    // The router hands connections to ready workers only, which attached before they said so.
    if (this.httpServer === undefined) {
      if (placement.quota !== undefined) this.released(placement.quota);
      socket.destroy();
      return;
    }
    if (placement.quota !== undefined) {
      const hold = new AddressHold(placement.quota, this.released);
      hold.bindTo(socket);
      this.holds.set(socket, hold);
    }
    if (placement.full) {
      const key = addressKey(socket);
      this.overCapacity.add(key);
      socket.once("close", () => this.overCapacity.delete(key));
    }
    this.httpServer.emit("connection", socket);
    if (bytes.length > 0) socket.unshift(bytes);
  }

  get handOffsReceived(): number {
    return this.longLivedReceived;
  }

  /**
   * The primary's count of this request's connection, taken (a second call gets nothing): bound to
   * the socket until then, then the caller's to bind to what outlives it or to release. Undefined
   * when the primary did not count it (over TLS it cannot read requests: the worker counts).
   */
  holdOf(request: IncomingMessage): AddressHold | undefined {
    const hold = this.holds.get(request.socket);
    if (hold !== undefined) this.holds.delete(request.socket);
    return hold;
  }

  /** True when the primary found the machine full as this request's connection arrived. */
  isOverCapacity(request: IncomingMessage): boolean {
    return this.overCapacity.size > 0 && this.overCapacity.has(addressKey(request.socket));
  }
}

const EMPTY = Buffer.alloc(0);

const addressKey = (socket: Socket): string => `${socket.remoteAddress ?? ""}|${socket.remotePort ?? 0}`;
