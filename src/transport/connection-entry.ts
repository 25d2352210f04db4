import { STATUS_CODES, type IncomingMessage, type Server as HttpServer, type ServerResponse } from "node:http";
import { refusalBody } from "../http/refusal.ts";
import type { Duplex } from "node:stream";
import { isRefusal, type ConnectionGate, type GateRefusal, type GateVerdict } from "../limits/connection-gate.ts";
import type { Logger } from "../observability/logger.ts";
import type { WsEndpoint } from "./ws-endpoint.ts";

type RequestListener = (request: IncomingMessage, response: ServerResponse) => void;
type UpgradeListener = (request: IncomingMessage, socket: Duplex, head: Buffer) => void;

export interface ConnectionEntryOptions {
  readonly gate: ConnectionGate;
  /** Engine.IO's path (`/socket.io/`). */
  readonly socketIoPath: string;
  /** Every plain-WebSocket endpoint by its exact path (filled in later is fine: read per upgrade). */
  readonly endpoints: ReadonlyMap<string, WsEndpoint>;
  readonly logger: Logger;
}

/**
 * Where every connection enters the HTTP server: the one upgrade dispatcher (Engine.IO's path, /ws,
 * the dialects' paths, else 404) and the gate in front of Engine.IO's requests, so that the
 * connection gate (limits/connection-gate.ts) decides every new connection, on every path, before
 * anything else sees it. Call right after Socket.IO attached to `httpServer`: it takes Engine.IO's
 * own 'request' and 'upgrade' listeners (the only ones then) and calls them for what it lets through.
 */
export function installConnectionEntry(httpServer: HttpServer, options: ConnectionEntryOptions): void {
  const { gate, socketIoPath, endpoints, logger } = options;
  const engineRequest = httpServer.listeners("request") as RequestListener[];
  const engineUpgrade = httpServer.listeners("upgrade") as UpgradeListener[];
  httpServer.removeAllListeners("request");
  httpServer.removeAllListeners("upgrade");

  httpServer.on("request", (request: IncomingMessage, response: ServerResponse) => {
    if ((request.url ?? "").startsWith(socketIoPath)) {
      const refusal = gate.checkEngineRequest(request);
      if (refusal !== undefined) {
        logger.debug({ status: refusal.status, reason: refusal.reason, address: gate.addressOf(request) }, "gate refused");
        const body = refusalBody(refusal.status, refusal.reason);
        response.writeHead(refusal.status, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
        response.end(body);
        return;
      }
    }
    for (const listener of engineRequest) listener.call(httpServer, request, response);
  });

  httpServer.on("upgrade", (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = request.url ?? "";
    if (url.startsWith(socketIoPath)) {
      const refusal = gate.checkEngineRequest(request);
      if (refusal !== undefined) refuse(socket, refusal, request);
      else for (const listener of engineUpgrade) listener.call(httpServer, request, socket, head);
      return;
    }
    const endpoint = endpoints.get(url.split("?", 1)[0] ?? "");
    if (endpoint === undefined) {
      answer(socket, 404);
      return;
    }
    const verdict = gate.admitWebSocket(request);
    if (!(verdict instanceof Promise)) {
      enter(endpoint, verdict, request, socket, head);
      return;
    }
    // Until the token is checked nobody else listens to the socket: an error must not go unhandled.
    const onError = (): void => void socket.destroy();
    socket.on("error", onError);
    void verdict.then((settled) => {
      socket.removeListener("error", onError);
      // A client gone meanwhile: its count went with its socket.
      if (!socket.destroyed) enter(endpoint, settled, request, socket, head);
    });
  });

  const enter = (endpoint: WsEndpoint, verdict: GateVerdict, request: IncomingMessage, socket: Duplex, head: Buffer): void => {
    if (isRefusal(verdict)) refuse(socket, verdict, request);
    else endpoint.handleUpgrade(request, socket, head, verdict);
  };
  const refuse = (socket: Duplex, refusal: GateRefusal, request: IncomingMessage): void => {
    logger.debug({ status: refusal.status, reason: refusal.reason, address: gate.addressOf(request) }, "gate refused");
    answer(socket, refusal.status, refusal.reason);
  };
}

/** Answers an upgrade with an HTTP status (and its reason as a JSON body), then closes. */
function answer(socket: Duplex, status: GateRefusal["status"] | 404, reason?: string): void {
  const body = reason === undefined ? "" : refusalBody(status, reason);
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ""}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
}
