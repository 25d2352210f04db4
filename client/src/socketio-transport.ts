import { io, type ManagerOptions, type Socket, type SocketOptions } from "socket.io-client";
import { PeerError } from "./errors.ts";
import type { RequestBody, RequestType, ServerMessage } from "./protocol.ts";
import type { Transport, TransportHandlers } from "./transport.ts";

/** Socket.IO client options the SDK passes through (transports, path, extraHeaders in Node, ...). */
export type SocketIoOptions = Partial<ManagerOptions & SocketOptions>;

/**
 * The server's Socket.IO binding: one event per message type, whose single argument is the
 * envelope without `type`. Each request carries an acknowledgement callback, which the server
 * calls with the direct reply (or `ok` for a request without one), so replies pair with requests
 * exactly. Socket.IO's own reconnection is off: the client reconnects, and resumes, itself.
 */
export class SocketIoTransport implements Transport {
  private socket: Socket | undefined;
  private readonly pending = new Set<(error: PeerError) => void>();
  private announced: number | undefined;
  private ended = false;

  constructor(
    private readonly url: string,
    private readonly options: SocketIoOptions,
    private readonly handlers: TransportHandlers,
  ) {}

  open(): Promise<void> {
    return new Promise((resolve, reject) => {
      const socket = io(this.url, { ...this.options, reconnection: false, forceNew: true, autoConnect: false });
      this.socket = socket;
      socket.onAny((event: string, body: Record<string, unknown> | undefined) => this.receive({ type: event, ...body } as ServerMessage));
      socket.once("connect", () => {
        socket.off("connect_error");
        resolve();
      });
      socket.once("connect_error", (error) => {
        socket.close();
        reject(error);
      });
      socket.on("disconnect", (reason) => {
        // "io client disconnect" is our own close(), which reports nothing.
        if (reason !== "io client disconnect") this.end(reason);
      });
      socket.connect();
    });
  }

  request(type: RequestType, body: RequestBody, timeoutMs: number): Promise<ServerMessage | undefined> {
    const socket = this.socket;
    if (socket === undefined || !socket.connected || this.ended) return Promise.reject(new PeerError("connection_lost", "not connected", type));
    return new Promise((resolve, reject) => {
      const fail = (error: PeerError): void => {
        this.pending.delete(fail);
        reject(error);
      };
      this.pending.add(fail);
      socket.timeout(timeoutMs).emit(type, body, (timedOut: Error | null, reply: ServerMessage) => {
        if (!this.pending.delete(fail)) return; // already failed with the connection
        if (timedOut !== null) reject(new PeerError("timeout", `no answer to ${type} within ${timeoutMs} ms`, type));
        else if (reply.type === "error") reject(PeerError.fromPayload(reply.payload));
        else resolve(reply.type === "ok" && type !== "refresh" ? undefined : reply);
      });
    });
  }

  close(error: PeerError): void {
    this.ended = true;
    this.failAll(error);
    this.socket?.offAny();
    this.socket?.close();
  }

  private receive(message: ServerMessage): void {
    if (message.type === "error" && message.payload.close_code !== undefined) this.announced = message.payload.close_code;
    this.handlers.message(message);
  }

  private end(reason: string): void {
    if (this.ended) return;
    this.ended = true;
    this.failAll(new PeerError("connection_lost", `connection lost (${reason})`));
    this.handlers.closed({ code: undefined, reason, announced: this.announced });
  }

  private failAll(error: PeerError): void {
    const pending = [...this.pending];
    this.pending.clear();
    for (const fail of pending) fail(error);
  }
}
