import type { Server, Socket } from "socket.io";
import type { Connection } from "../core/connection.ts";
import { closeWithNotice, type Hub } from "../core/hub.ts";
import type { Ack, Session } from "../core/session.ts";
import type { Body } from "../protocol/envelope.ts";
import type { Config } from "../config/load.ts";
import { engineWebSocketBacklog } from "../internals/library-internals.ts";
import type { Admission } from "../limits/admission.ts";
import { isRefusal, type ConnectionGate } from "../limits/connection-gate.ts";
import type { AccessClaims } from "../trust/access-tokens.ts";
import type { ConnectionEnd } from "../observability/connection-log.ts";
import { noMetrics, type Metrics } from "../observability/metrics.ts";
import { decodeRequest } from "../protocol/decoder.ts";
import { CloseCode, ErrorCode } from "../protocol/errors.ts";
import { nestsDeeperThan } from "../protocol/json-depth.ts";
import { BAD_PACKET_EVENT } from "./socketio-parser.ts";

/**
 * Over long-polling, packets wait in the engine until the client's next poll even when it reads
 * promptly, so the bound is this many times looser there.
 */
const POLLING_SLACK = 8;

/** How an event of the main namespace begins in Socket.IO's encoding: its type follows. */
const EVENT_PACKET = '2["';

/** Socket.IO's disconnect reasons that mean the server ended the connection (the others: the client left or its transport broke). */
const SERVER_REASONS: ReadonlySet<string> = new Set(["server namespace disconnect", "server shutting down", "forced server close", "ping timeout", "parse error"]);

/**
 * A Socket.IO socket as a core Connection. Each protocol message type is an event whose single
 * argument is the envelope without `type`.
 */
class SocketIoConnection implements Connection {
  readonly transport = "socket.io";
  private closed = false;
  /** Set when the server closes the connection (close()): how it ended. */
  private end: ConnectionEnd | undefined;
  /**
   * Packets in the engine's write buffer (exact from its first flush on): every packet is announced
   * (`packetCreate`) as it enters the buffer, which empties only when flushed (`flush`), both public
   * engine.io events.
   */
  private queued = 0;
  /**
   * True while send or sendEncoded hands a packet to the engine: those are counted by their type
   * there, and `packetCreate` counts only the others (the adapter's room emits), reading the type
   * from the encoded text. Reading it from a packet of our own would copy the whole message once
   * more: the engine's text of a packet is a concatenation that V8 flattens when it is read, and
   * flattening the part first costs a second copy when the whole is written (measured: about 5% of
   * a Socket.IO signal's CPU).
   */
  private sending = false;

  constructor(
    private readonly socket: Socket,
    sendBufferSize: number,
    private readonly metrics: Metrics,
    /** The client address as the connection gate resolved it (trusted proxies' X-Forwarded-For, in normal form). */
    private readonly clientAddress: string | undefined,
  ) {
    const engine = socket.conn;
    const counting = metrics !== noMetrics;
    engine.on("flush", () => {
      this.queued = 0;
    });
    // Every packet for this client, from a direct emit or from an adapter broadcast, passes here
    // before it is queued: one place to enforce send_buffer_size for all delivery paths.
    // Over WebSocket the engine holds packets while a send is in flight (until the next tick) even
    // for a client that reads promptly; they count only while the socket below is backed up too,
    // i.e. the kernel stopped taking data because the client stopped reading.
    engine.on("packetCreate", (packet: { data?: unknown }) => {
      // One server message per event packet (`2["type",...`) that send and sendEncoded did not count;
      // acknowledgements are counted by the hub.
      const data = packet.data;
      if (counting && !this.sending && typeof data === "string" && data.startsWith(EVENT_PACKET)) metrics.messageSentIn(data, EVENT_PACKET.length);
      const queued = this.queued++;
      if (this.closed || queued < sendBufferSize) return;
      const transport = engine.transport;
      const stalled = transport.name === "polling" ? queued >= sendBufferSize * POLLING_SLACK : engineWebSocketBacklog(transport) > 0;
      if (stalled) queueMicrotask(() => this.close(CloseCode.SlowConsumer, "slow consumer"));
    });
  }

  get id(): string {
    return this.socket.id;
  }

  get remoteAddress(): string {
    return this.clientAddress ?? this.socket.handshake.address;
  }

  /** How the connection ended, given Socket.IO's disconnect reason. */
  ending(reason: string): ConnectionEnd {
    return this.end ?? { code: undefined, reason, byServer: SERVER_REASONS.has(reason) };
  }

  get rooms(): ReadonlySet<string> {
    return this.socket.rooms;
  }

  send(type: string, body: Body): void {
    // The packet socket.emit would write, written as sendEncoded writes it: emit would first look
    // through the body for binary data, which a server message never holds.
    this.sendEncoded(type, JSON.stringify(body));
  }

  sendEncoded(type: string, bodyJson: string): void {
    if (this.closed) return;
    this.metrics.messageSent(type);
    this.sending = true;
    try {
      // An EVENT packet of the default namespace in Socket.IO's wire format, written to the engine
      // as the adapter writes a broadcast, so the body is not parsed and serialized again.
      this.socket.conn.write(`2["${type}",${bodyJson}]`);
    } finally {
      this.sending = false;
    }
  }

  join(room: string): void {
    void this.socket.join(room);
  }

  leave(room: string): void {
    void this.socket.leave(room);
  }

  close(code: CloseCode, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.end = { code, reason, byServer: true };
    // disconnect() leaves every room synchronously; a slow consumer's queue is discarded, not drained.
    this.socket.disconnect(true);
    if (code === CloseCode.SlowConsumer) {
      this.metrics.slowConsumer();
      this.socket.conn.close(true);
    }
  }
}

/** What the server's shutdown needs of its Socket.IO connections. */
export interface SocketIoBinding {
  /**
   * Resolves once every Engine.IO connection over WebSocket open now has closed. A disconnected
   * socket's engine closes once it has written what it holds (the disconnect packet among it);
   * Socket.IO's own close() would discard that. Long-polling ones are not waited for: what they hold
   * waits for the client's next request, which a stopping worker no longer accepts.
   */
  closed(): Promise<void>;
}

/**
 * Wires Socket.IO connections into the hub. With access tokens on, a connection's token (its
 * handshake's `auth.token`, or its first request's Bearer header or `?token=`) is checked at its
 * connect: a missing or invalid one gets `connect_error` with `data.code` 401 (503 when the keys
 * cannot be fetched) and never reaches the hub.
 */
export function bindSocketIo(
  io: Server,
  hub: Hub,
  config: Pick<Config, "sendBufferSize" | "maxJsonDepth" | "maxMessageSize">,
  admission: Admission,
  gate: ConnectionGate,
  metrics: Metrics = noMetrics,
): SocketIoBinding {
  const claims = new WeakMap<Socket, AccessClaims>();
  /** Engine.IO connections that have not closed yet. */
  const open = new Set<Socket["conn"]>();
  if (gate.tokensRequired) {
    io.use((socket, next) => {
      const auth = socket.handshake.auth as Record<string, unknown> | undefined;
      void gate.admitSocketIo(socket.conn.request, auth?.["token"]).then((verdict) => {
        if (!isRefusal(verdict)) {
          if (verdict.claims !== undefined) claims.set(socket, verdict.claims);
          next();
          return;
        }
        // Socket.IO sends the message and `data` to the client as its connect_error.
        next(Object.assign(new Error(verdict.reason), { data: { code: verdict.status } }));
      });
    });
  }
  io.on("connection", (socket) => {
    open.add(socket.conn);
    socket.conn.once("close", () => open.delete(socket.conn));
    const connection = new SocketIoConnection(socket, config.sendBufferSize, metrics, gate.addressOf(socket.conn.request));
    const session = hub.open(connection, admission.refusesSession(socket.conn.request), claims.get(socket));
    if (session === undefined) return;
    // Engine.IO reads packets up to twice max_message_size (maxHttpBufferSize), so one over the
    // limit is still read and refused here with a notice before the close; "packet" comes before
    // the packet reaches the decoder, and once disconnected the socket gets nothing more. Larger
    // ones Engine.IO cuts unread, with no notice.
    socket.conn.on("packet", (packet: { type: string; data?: unknown }) => {
      if (packet.type === "message" && largerThan(packet.data, config.maxMessageSize)) {
        closeWithNotice(connection, ErrorCode.BadRequest, CloseCode.MessageTooBig, "message larger than max_message_size");
      }
    });
    socket.onAny((event: string, ...args: unknown[]) => onEvent(hub, session, event, args, config.maxJsonDepth));
    socket.on("disconnect", (reason: string) => void hub.close(session, connection.ending(reason)));
  });
  return {
    closed: () => {
      const closing = [...open].filter((engine) => engine.transport.name === "websocket");
      return Promise.all(closing.map((engine) => new Promise<void>((resolve) => engine.once("close", () => resolve())))).then(() => undefined);
    },
  };
}

function onEvent(hub: Hub, session: Session, event: string, args: unknown[], maxJsonDepth: number): void {
  const last = args[args.length - 1];
  const ack = typeof last === "function" ? (last as Ack) : undefined;
  if (ack !== undefined) args.pop();
  // A packet the decoder refused (socketio-parser.ts); its one argument is the reason.
  if (event === BAD_PACKET_EVENT) {
    hub.reject(session, ErrorCode.BadRequest, String(args[0]), ack);
    return;
  }
  if (args.length > 1) {
    hub.reject(session, ErrorCode.BadRequest, "send one envelope object as the only argument", ack, event);
    return;
  }
  // No argument at all is an empty envelope (`emit("ping")`); an explicit null is refused like on /ws.
  const envelope = args.length === 0 ? {} : args[0];
  if (typeof envelope !== "object" || envelope === null || Array.isArray(envelope) || Buffer.isBuffer(envelope)) {
    hub.reject(session, ErrorCode.BadRequest, "the argument must be an envelope object", ack, event);
    return;
  }
  if (nestsDeeperThan(envelope, maxJsonDepth)) {
    hub.reject(session, ErrorCode.BadRequest, `a message may nest at most ${maxJsonDepth} levels (max_json_depth)`, ack, event);
    return;
  }
  hub.receive(session, decodeRequest(event, envelope), ack);
}

/** Whether an Engine.IO message is over `limit` bytes (UTF-8 for text); UTF-8 is counted only when the length leaves it open. */
function largerThan(data: unknown, limit: number): boolean {
  if (typeof data === "string") return data.length > limit || (data.length * 3 > limit && Buffer.byteLength(data, "utf8") > limit);
  return data instanceof ArrayBuffer || ArrayBuffer.isView(data) ? data.byteLength > limit : false;
}
