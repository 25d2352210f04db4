import type { IncomingMessage } from "node:http";
import { performance } from "node:perf_hooks";
import type { Duplex } from "node:stream";
import type { Namespace } from "socket.io";
import { WebSocketServer, type WebSocket } from "ws";
import type { Config } from "../config/load.ts";
import { systemClock } from "../core/context.ts";
import { closeWithNotice, type Hub } from "../core/hub.ts";
import type { Session } from "../core/session.ts";
import { BroadcastCache } from "../delivery/broadcast-cache.ts";
import type { Admission } from "../limits/admission.ts";
import type { GateAdmission } from "../limits/connection-gate.ts";
import type { Logger } from "../observability/logger.ts";
import { noMetrics, type Metrics } from "../observability/metrics.ts";
import { CloseCode, ErrorCode } from "../protocol/errors.ts";
import { Keepalive } from "./keepalive.ts";
import type { ConnectionIds, WsConnection} from "./ws-connection.ts";
import { type WsConnectionContext } from "./ws-connection.ts";
import { quietRepeatedSocketEnds } from "../internals/library-internals.ts";

/** An upgrade refused before the WebSocket exists: answered with this HTTP status. */
export interface RefusedUpgrade {
  status: number;
  reason: string;
}

/**
 * What one WebSocket endpoint speaks: the native JSON protocol at /ws (transport/raw-ws.ts), or a
 * dialect (src/dialects/). The endpoint owns everything the wire has in common — admission,
 * keepalive, the size limit, slow consumers, compression, shutdown — and hands the protocol the
 * connection's text frames.
 */
export interface WsProtocol<C extends WsConnection = WsConnection> {
  /** What connections of this endpoint report as their transport (`/stats` counts them under it). */
  readonly name: string;
  /** Checks an upgrade before the WebSocket exists; undefined lets it through. */
  checkUpgrade?(request: IncomingMessage): RefusedUpgrade | undefined;
  /** Builds the connection of a new WebSocket (a dialect's own subclass translates what it is sent). */
  createConnection(id: string, socket: WebSocket, context: WsConnectionContext, request: IncomingMessage): C;
  /** The hub admitted the connection: its session exists and may be fed requests. */
  opened?(session: Session, connection: C, request: IncomingMessage): void;
  /** One text frame within max_message_size, as received. */
  receiveText(session: Session, connection: C, text: string): void;
  /** One binary frame within max_message_size. */
  receiveBinary(session: Session, connection: C): void;
}

/**
 * One plain-WebSocket endpoint of the server (/ws, or a dialect's path), over the shared hub. Every
 * endpoint's connections are adapter peers of the same namespace: one world.
 */
export class WsEndpoint<C extends WsConnection = WsConnection> {
  private readonly server: WebSocketServer;
  private readonly connections = new Set<C>();
  private readonly keepalive: Keepalive<C>;
  private readonly context: WsConnectionContext;

  constructor(
    private readonly protocol: WsProtocol<C>,
    private readonly config: Config,
    private readonly hub: Hub,
    nsp: Namespace,
    private readonly logger: Logger,
    private readonly admission: Admission,
    private readonly ids: ConnectionIds,
    metrics: Metrics = noMetrics,
  ) {
    this.context = { nsp, config, cache: new BroadcastCache(), metrics };
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
      // Its timers never hold the process open.
      setTimer: systemClock.setTimer,
    });
  }

  /** The transport name of this endpoint's connections. */
  get name(): string {
    return this.protocol.name;
  }

  /** Starts the keepalive. Safe to call twice. */
  start(): void {
    this.keepalive.start();
  }

  /** Connections open, registered or not. */
  get connectionCount(): number {
    return this.connections.size;
  }

  /** Takes an upgrade the connection gate let in (`admitted`: its client address and token claims). */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer, admitted: GateAdmission): void {
    const refusal = this.protocol.checkUpgrade?.(request);
    if (refusal !== undefined) {
      socket.end(`HTTP/1.1 ${refusal.status} ${refusal.reason}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      return;
    }
    // Decided before this connection counts; a refused peer still gets the protocol's notice.
    const refused = this.admission.refuses(request);
    quietRepeatedSocketEnds(socket);
    this.server.handleUpgrade(request, socket, head, (ws) => this.accept(ws, request, refused, admitted));
  }

  /** Closes every connection with `code`; stops the keepalive. Safe to call twice. */
  close(code: CloseCode, reason: string): void {
    this.keepalive.stop();
    for (const connection of this.connections) connection.close(code, reason);
  }

  private accept(ws: WebSocket, request: IncomingMessage, refused: boolean, admitted: GateAdmission): void {
    const connection = this.protocol.createConnection(this.ids.next(), ws, this.context, request);
    connection.clientAddress = admitted.address;
    this.connections.add(connection);
    this.keepalive.watch(connection);
    ws.on("close", (code: number, reason: Buffer) => {
      this.connections.delete(connection);
      this.keepalive.unwatch(connection);
      connection.detach();
      // Closed by the client (when the server closed it, onServerClose below came first).
      if (session !== undefined) void this.hub.close(session, { code, reason: reason.toString(), byServer: false });
    });
    ws.on("error", (error) => this.logger.debug({ err: error, conn: connection.id }, "websocket error"));
    ws.on("pong", () => this.keepalive.seen(connection));
    const session = this.hub.open(connection, refused, admitted.claims);
    if (session === undefined) return;
    connection.onServerClose = (end) => void this.hub.close(session, end);
    ws.on("message", (data: Buffer, isBinary: boolean) => {
      this.keepalive.seen(connection);
      if (data.length > this.config.maxMessageSize) {
        closeWithNotice(connection, ErrorCode.BadRequest, CloseCode.MessageTooBig, "message larger than max_message_size");
      } else if (isBinary) this.protocol.receiveBinary(session, connection);
      else this.protocol.receiveText(session, connection, data.toString());
    });
    this.protocol.opened?.(session, connection, request);
  }
}


/**
 * Largest message read at all, on every transport: up to here one over max_message_size gets its
 * notice before the close (1009); a larger one is cut by the library unread.
 */
export const oversizeReadLimit = (maxMessageSize: number): number => 2 * maxMessageSize;
