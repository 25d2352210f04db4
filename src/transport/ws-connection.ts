import { randomBytes } from "node:crypto";
import type { Socket } from "node:net";
import type { Namespace } from "socket.io";
import type { WebSocket } from "ws";
import type { Config } from "../config/load.ts";
import type { Connection } from "../core/connection.ts";
import type { BroadcastCache } from "../delivery/broadcast-cache.ts";
import { registerAdapterPeer, unregisterAdapterPeer, type AdapterPeer } from "../internals/library-internals.ts";
import type { ConnectionEnd } from "../observability/connection-log.ts";
import type { Metrics } from "../observability/metrics.ts";
import { encodeRaw, spliceType, type Body } from "../protocol/envelope.ts";
import { CloseCode } from "../protocol/errors.ts";
import type { KeepalivePeer } from "./keepalive.ts";

const NO_ROOMS: ReadonlySet<string> = new Set();
const SEND_TEXT = { binary: false } as const;
/** A connection the keepalive cut: no close frame, as a client sees it (1006). */
const KEEPALIVE_END: ConnectionEnd = { code: 1006, reason: "no sign of life within pong_wait", byServer: true };

/**
 * Adapter ids for WebSocket connections: 20 characters like Socket.IO's own (the sharded Redis
 * adapter treats 20-character rooms as socket ids), unique without a random draw per connection: a
 * random per-process prefix and a counter. One generator per process, shared by every endpoint.
 */
export class ConnectionIds {
  private readonly prefix = randomBytes(9).toString("base64url");
  private counter = 0;

  next(): string {
    return this.prefix + (this.counter++).toString(36).padStart(8, "0");
  }
}

/** What every WebSocket connection of one endpoint shares. */
export interface WsConnectionContext {
  readonly nsp: Namespace;
  readonly config: Config;
  /** Converts an adapter broadcast to a native frame once for all its recipients. */
  readonly cache: BroadcastCache;
  /** Counts what is sent and the slow consumers. */
  readonly metrics: Metrics;
}

/** Where the type starts in an adapter broadcast's encoded event (`2["type",{...}]`). */
const ENCODED_TYPE_START = 3;

/**
 * A peer on a plain WebSocket: the native protocol at /ws, or a dialect (which subclasses it to
 * speak its own vocabulary). It is registered in the adapter like a Socket.IO socket
 * (registerAdapterPeer), so every emit the core sends to a room (namespace, private room,
 * fingerprint) reaches it through the same path as Socket.IO sockets, on this process or, through
 * the adapter, from any other.
 */
export class WsConnection implements Connection, AdapterPeer, KeepalivePeer {
  private readonly issued = Date.now();
  /** Messages sent since the socket last had nothing queued in this process (see write). */
  private queued = 0;
  private closed = false;
  lastSeenMs = 0;
  /**
   * The client's address as the connection gate resolved it (trusted proxies' X-Forwarded-For, in
   * normal form), set as the connection opens; the socket's own address until then.
   */
  clientAddress: string | undefined;
  /** Set once the hub admitted the connection: ends its session, when the server closes it. */
  onServerClose: ((end: ConnectionEnd) => void) | undefined;

  constructor(
    readonly id: string,
    readonly transport: string,
    private readonly socket: WebSocket,
    protected readonly context: WsConnectionContext,
    private readonly tcp: Socket,
  ) {
    registerAdapterPeer(context.nsp, id, this);
    void context.nsp.adapter.addAll(id, new Set([id]));
  }

  get rooms(): ReadonlySet<string> {
    return this.context.nsp.adapter.socketRooms(this.id) ?? NO_ROOMS;
  }

  get remoteAddress(): string | undefined {
    return this.clientAddress ?? this.tcp.remoteAddress;
  }

  /** Read only by fetchSockets(); built on demand (the peer address costs a system call). */
  handshake(): Record<string, unknown> {
    return { address: this.remoteAddress ?? "", transport: this.transport, issued: this.issued };
  }

  closeBySocketIo(shutdown: boolean): void {
    this.close(CloseCode.GoingAway, shutdown ? "server shutting down" : "disconnected by server");
  }

  send(type: string, body: Body): void {
    if (!this.closed) this.context.metrics.messageSent(type);
    this.write(encodeRaw(type, body));
  }

  sendEncoded(type: string, bodyJson: string): void {
    if (!this.closed) this.context.metrics.messageSent(type);
    this.write(spliceType(type, bodyJson));
  }

  deliverEncoded(packets: unknown[]): void {
    const frame = this.context.cache.frameFor(packets);
    if (frame === undefined) return;
    // A frame exists only for one encoded event, `2["type",...`.
    if (!this.closed) this.context.metrics.messageSentIn(packets[0] as string, ENCODED_TYPE_START);
    this.write(frame);
  }

  /**
   * send_buffer_size bounds the messages waiting in this process for a peer. While the peer reads,
   * the kernel takes each frame as it is written and nothing stays queued (`bufferedAmount` is 0),
   * however many messages one turn of the event loop sends; only when the peer stops reading do
   * frames pile up here, and the one that would pass the bound closes the connection (4002).
   */
  protected write(data: string | Buffer): void {
    if (this.closed) return;
    if (this.socket.bufferedAmount === 0) this.queued = 0;
    else if (++this.queued > this.context.config.sendBufferSize) {
      this.context.metrics.slowConsumer();
      this.close(CloseCode.SlowConsumer, "slow consumer");
      return;
    }
    this.socket.send(data, SEND_TEXT);
  }

  join(room: string): void {
    void this.context.nsp.adapter.addAll(this.id, new Set([room]));
  }

  leave(room: string): void {
    void this.context.nsp.adapter.del(this.id, room);
  }

  close(code: CloseCode, reason: string): void {
    if (this.closed) return;
    this.detach();
    // The peer is gone for everyone now, not when its close handshake ends: a slow consumer may
    // take write_timeout to get there, and until then it would still look registered.
    this.onServerClose?.({ code, reason, byServer: true });
    this.socket.close(code, reason);
    // A peer that is not reading will never complete the close handshake.
    setTimeout(() => this.socket.terminate(), this.context.config.writeTimeoutMs).unref();
  }

  /** Leaves the adapter: from here on no delivery reaches this connection. */
  detach(): void {
    if (this.closed) return;
    this.closed = true;
    void this.context.nsp.adapter.delAll(this.id);
    unregisterAdapterPeer(this.context.nsp, this.id);
  }

  /** False once closed by either side: nothing more is sent. */
  get isOpen(): boolean {
    return !this.closed;
  }

  ping(): void {
    if (!this.closed) this.socket.ping();
  }

  terminate(): void {
    if (!this.closed) this.onServerClose?.(KEEPALIVE_END);
    this.detach();
    this.socket.terminate();
  }
}
