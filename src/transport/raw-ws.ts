import { randomBytes } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import { performance } from "node:perf_hooks";
import type { Duplex } from "node:stream";
import type { Namespace } from "socket.io";
import { WebSocketServer, type WebSocket } from "ws";
import type { Config } from "../config/load.ts";
import type { Connection } from "../core/connection.ts";
import { closeWithNotice, type Hub } from "../core/hub.ts";
import type { Session } from "../core/session.ts";
import { registerAdapterPeer, unregisterAdapterPeer, type AdapterPeer } from "../internals/library-internals.ts";
import type { Admission } from "../limits/admission.ts";
import type { Logger } from "../observability/logger.ts";
import { decodeRequest } from "../protocol/decoder.ts";
import { encodeRaw, spliceType, type Body } from "../protocol/envelope.ts";
import { CloseCode, ErrorCode } from "../protocol/errors.ts";
import { nestsDeeperThan } from "../protocol/json-depth.ts";
import { memberText } from "../protocol/json-span.ts";
import { Keepalive, type KeepalivePeer } from "./keepalive.ts";
import { BroadcastCache } from "../delivery/broadcast-cache.ts";

const NO_ROOMS: ReadonlySet<string> = new Set();
const SEND_TEXT = { binary: false } as const;

/**
 * Adapter ids for raw connections: 20 characters like Socket.IO's own (the sharded Redis adapter
 * treats 20-character rooms as socket ids), unique without a random draw per connection: a random
 * per-process prefix and a counter.
 */
class ConnectionIds {
  private readonly prefix = randomBytes(9).toString("base64url");
  private counter = 0;

  next(): string {
    return this.prefix + (this.counter++).toString(36).padStart(8, "0");
  }
}

/**
 * A raw WebSocket peer. It is registered in the adapter like a Socket.IO socket
 * (registerAdapterPeer), so every emit the core sends to a room (namespace, private room,
 * fingerprint) reaches it through the same path as Socket.IO sockets, on this process or, through
 * the adapter, from any other.
 */
class RawConnection implements Connection, AdapterPeer, KeepalivePeer {
  readonly transport = "ws";
  private readonly issued = Date.now();
  /** Messages sent since the socket last had nothing queued in this process (see write). */
  private queued = 0;
  private closed = false;
  lastSeenMs = 0;
  /** Set once the hub admitted the connection: ends its session. */
  onServerClose: (() => void) | undefined;

  constructor(
    readonly id: string,
    private readonly socket: WebSocket,
    private readonly nsp: Namespace,
    private readonly cache: BroadcastCache,
    private readonly config: Config,
    private readonly tcp: Socket,
  ) {
    registerAdapterPeer(nsp, id, this);
    void nsp.adapter.addAll(id, new Set([id]));
  }

  get rooms(): ReadonlySet<string> {
    return this.nsp.adapter.socketRooms(this.id) ?? NO_ROOMS;
  }

  /** Read only by fetchSockets(); built on demand (the peer address costs a system call). */
  handshake(): Record<string, unknown> {
    return { address: this.tcp.remoteAddress ?? "", transport: "ws", issued: this.issued };
  }

  closeBySocketIo(shutdown: boolean): void {
    this.close(CloseCode.GoingAway, shutdown ? "server shutting down" : "disconnected by server");
  }

  send(type: string, body: Body): void {
    this.write(encodeRaw(type, body));
  }

  sendEncoded(type: string, bodyJson: string): void {
    this.write(spliceType(type, bodyJson));
  }

  deliverEncoded(packets: unknown[]): void {
    const frame = this.cache.frameFor(packets);
    if (frame !== undefined) this.write(frame);
  }

  /**
   * send_buffer_size bounds the messages waiting in this process for a peer. While the peer reads,
   * the kernel takes each frame as it is written and nothing stays queued (`bufferedAmount` is 0),
   * however many messages one turn of the event loop sends; only when the peer stops reading do
   * frames pile up here, and the one that would pass the bound closes the connection (4002).
   */
  private write(data: string | Buffer): void {
    if (this.closed) return;
    if (this.socket.bufferedAmount === 0) this.queued = 0;
    else if (++this.queued > this.config.sendBufferSize) {
      this.close(CloseCode.SlowConsumer, "slow consumer");
      return;
    }
    this.socket.send(data, SEND_TEXT);
  }

  join(room: string): void {
    void this.nsp.adapter.addAll(this.id, new Set([room]));
  }

  leave(room: string): void {
    void this.nsp.adapter.del(this.id, room);
  }

  close(code: CloseCode, reason: string): void {
    if (this.closed) return;
    this.detach();
    // The peer is gone for everyone now, not when its close handshake ends: a slow consumer may
    // take write_timeout to get there, and until then it would still look registered.
    this.onServerClose?.();
    this.socket.close(code, reason);
    // A peer that is not reading will never complete the close handshake.
    setTimeout(() => this.socket.terminate(), this.config.writeTimeoutMs).unref();
  }

  /** Leaves the adapter: from here on no delivery reaches this connection. */
  detach(): void {
    if (this.closed) return;
    this.closed = true;
    void this.nsp.adapter.delAll(this.id);
    unregisterAdapterPeer(this.nsp, this.id);
  }

  ping(): void {
    if (!this.closed) this.socket.ping();
  }

  terminate(): void {
    this.detach();
    this.socket.terminate();
  }
}

/** The `/ws` endpoint: the documented JSON protocol over plain WebSocket. */
export class RawWebSocketTransport {
  private readonly server: WebSocketServer;
  private readonly connections = new Set<RawConnection>();
  private readonly cache = new BroadcastCache();
  private readonly ids = new ConnectionIds();
  private readonly keepalive: Keepalive<RawConnection>;

  constructor(
    private readonly config: Config,
    private readonly hub: Hub,
    private readonly nsp: Namespace,
    private readonly logger: Logger,
    private readonly admission: Admission,
  ) {
    this.server = new WebSocketServer({
      noServer: true,
      // The ws library closes a frame over maxPayload with 1009 before anyone can say why. Frames up
      // to twice max_message_size are read and refused here with a notice first (see onMessage);
      // larger ones are cut by ws unread.
      maxPayload: oversizeReadLimit(config.maxMessageSize),
      perMessageDeflate: config.compressionEnabled,
      clientTracking: false,
    });
    // A connection that shows no sign of life (message or pong) for pong_wait is terminated, and its
    // peers are told through the normal disconnect path (the socket's close event).
    this.keepalive = new Keepalive({
      pingIntervalMs: config.pingIntervalMs,
      pongWaitMs: config.pongWaitMs,
      now: () => performance.now(),
      setTimer: unrefTimer,
    });
  }

  /** Starts the keepalive. Safe to call twice. */
  start(): void {
    this.keepalive.start();
  }

  /** Raw connections open, registered or not. */
  get connectionCount(): number {
    return this.connections.size;
  }

  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    // Decided before this connection counts; a refused peer still gets the protocol's notice.
    const refused = this.admission.refuses(request);
    this.server.handleUpgrade(request, socket, head, (ws) => this.accept(ws, request, refused));
  }

  /** Closes every raw connection with `code`; stops the keepalive. Safe to call twice. */
  close(code: CloseCode, reason: string): void {
    this.keepalive.stop();
    for (const connection of this.connections) connection.close(code, reason);
  }

  private accept(ws: WebSocket, request: IncomingMessage, refused: boolean): void {
    const id = this.ids.next();
    const connection = new RawConnection(id, ws, this.nsp, this.cache, this.config, request.socket);
    this.connections.add(connection);
    this.keepalive.watch(connection);
    ws.on("close", () => {
      this.connections.delete(connection);
      this.keepalive.unwatch(connection);
      connection.detach();
      if (session !== undefined) void this.hub.close(session);
    });
    ws.on("error", (error) => this.logger.debug({ err: error, id }, "raw websocket error"));
    ws.on("pong", () => this.keepalive.seen(connection));
    const session = this.hub.open(connection, refused);
    if (session === undefined) return;
    connection.onServerClose = () => void this.hub.close(session);
    ws.on("message", (data: Buffer, isBinary: boolean) => {
      this.keepalive.seen(connection);
      this.onMessage(session, data, isBinary);
    });
  }

  private onMessage(session: Session, data: Buffer, isBinary: boolean): void {
    if (data.length > this.config.maxMessageSize) {
      closeWithNotice(session.connection, ErrorCode.BadRequest, CloseCode.MessageTooBig, "message larger than max_message_size");
      return;
    }
    if (isBinary) {
      this.hub.reject(session, ErrorCode.BadRequest, "binary frames are not supported; send JSON text");
      return;
    }
    let message: unknown;
    const text = data.toString();
    try {
      message = JSON.parse(text);
    } catch {
      this.hub.reject(session, ErrorCode.BadRequest, "invalid JSON");
      return;
    }
    if (typeof message !== "object" || message === null || Array.isArray(message)) {
      this.hub.reject(session, ErrorCode.BadRequest, "a message must be a JSON object");
      return;
    }
    const fields = message as Record<string, unknown>;
    const type = fields["type"];
    if (nestsDeeperThan(message, this.config.maxJsonDepth)) {
      const ref = typeof type === "string" ? type : undefined;
      this.hub.reject(session, ErrorCode.BadRequest, `a message may nest at most ${this.config.maxJsonDepth} levels (max_json_depth)`, undefined, ref);
      return;
    }
    if (typeof type !== "string") {
      this.hub.reject(session, ErrorCode.BadRequest, "type is required");
      return;
    }
    // Signal and relay payloads are forwarded as the text they arrived as: never serialized again.
    const forwarded = type === "signal" || type === "relay";
    this.hub.receive(session, decodeRequest(type, fields, forwarded ? memberText(text, "payload") : undefined));
  }
}

/** The keepalive's timers: they never hold the process open. */
function unrefTimer(callback: () => void, ms: number): () => void {
  const timer = setTimeout(callback, ms);
  timer.unref();
  return () => clearTimeout(timer);
}

/**
 * Largest message read at all, on both transports: up to here one over max_message_size gets its
 * notice before the close (1009); a larger one is cut by the library unread.
 */
export const oversizeReadLimit = (maxMessageSize: number): number => 2 * maxMessageSize;
