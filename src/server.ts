import { readFileSync } from "node:fs";
import { createServer as createHttpServer, type IncomingMessage, type RequestListener, type Server as HttpServer } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { hostname } from "node:os";
import { Server as SocketIoServer, type ServerOptions } from "socket.io";
import type { Config } from "./config/load.ts";
import type { DirectLinks } from "./delivery/direct-links.ts";
import { Hub, closeWithNotice } from "./core/hub.ts";
import { enforceRequestDeadlines } from "./http/request-deadlines.ts";
import { assertLibraryInternals } from "./internals/library-internals.ts";
import { createHttpHandler, type WorkerStats } from "./http/routes.ts";
import { Admission } from "./limits/admission.ts";
import type { BudgetStore } from "./limits/budget-store.ts";
import { MemoryBudgetStore } from "./limits/memory-budget-store.ts";
import { createMemoryRegistrationLimiter, type RegistrationLimiter } from "./limits/rate-limiter.ts";
import type { Logger } from "./observability/logger.ts";
import { CloseCode, ErrorCode } from "./protocol/errors.ts";
import { MemoryStore } from "./state/memory-store.ts";
import type { Departure, StateStore } from "./state/store.ts";
import { RawWebSocketTransport } from "./transport/raw-ws.ts";
import { installRecipientFilter } from "./delivery/join-fence.ts";
import { CLOSE_EVENT, createSocketDelivery } from "./delivery/socket-delivery.ts";
import { bindSocketIo } from "./transport/socketio.ts";
import { socketIoParser } from "./transport/socketio-parser.ts";

export const SOCKET_IO_PATH = "/socket.io/";
export const RAW_WS_PATH = "/ws";

/** Server-to-server event between processes of one deployment (carried by the adapter). */
const STATS_EVENT = "peer-server:stats";
/** How often Node looks for requests past header_timeout / read_timeout: they are cut at most this late. */
const DEADLINE_CHECK_MS = 250;

export interface ServerDeps {
  logger: Logger;
  /** This process's id in the deployment. */
  nodeId?: string;
  /** Defaults to a MemoryStore: the embedded, single-process default. */
  store?: StateStore;
  /**
   * Where a key's message budget waits between its connections, for the whole deployment: the
   * cluster primary's (workers) or Redis (nodes). Defaults to one in this process's memory.
   */
  budgetStore?: BudgetStore;
  /** Registrations per public key for the whole deployment, as budgetStore. Defaults to one in memory. */
  registrationLimiter?: RegistrationLimiter;
  /** Socket.IO adapter (cluster or Redis) when other processes share the world. */
  adapter?: ServerOptions["adapter"];
  /** Engine.IO session id generator, so a front router can tell which process owns a session. */
  generateSessionId?: () => string;
  /** When false, the server does not listen: a cluster primary hands it connections. */
  listen?: boolean;
  /** Called with the Socket.IO and HTTP servers before they accept anything (cluster worker hooks). */
  attach?: (io: SocketIoServer, httpServer: HttpServer) => void;
  /** One-hop delivery to the worker holding a peer (cluster workers). */
  directLinks?: DirectLinks;
  /**
   * Whether the machine already held max_peers connections when this request's connection
   * arrived; decided by the cluster primary for its workers. Default: this process's own count.
   */
  overCapacity?: (request: IncomingMessage) => boolean;
  /** Backends this server depends on and whether each is up, for /health and /readyz. */
  backends?: () => Record<string, "up" | "down">;
}

export interface PeerServer {
  readonly nodeId: string;
  /** Listens (unless deps.listen is false) and resolves with the bound address. */
  start(): Promise<AddressInfo | undefined>;
  /** Connections open on this process, raw and Engine.IO, registered or not: what max_peers counts. */
  connectionCount(): number;
  /** Tells members about peers removed for a dead process; see Hub.announceRemoved. */
  announceDepartures(departures: readonly Departure[], everywhere: boolean): void;
  /** The state backend is back after an outage; see Hub.storeRecovered. */
  storeRecovered(stateLost: boolean, settleMs?: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * Wires config, state, core and transports into one server. The only place that does. Throws a
 * LibraryInternalsError, before wiring anything, when the installed socket.io libraries are not the
 * ones src/internals/ was verified against.
 */
export function createServer(config: Config, deps: ServerDeps): PeerServer {
  assertLibraryInternals();
  const { logger } = deps;
  const nodeId = deps.nodeId ?? `${hostname()}-${process.pid}`;
  const store = deps.store ?? new MemoryStore();
  const budgetStore = deps.budgetStore ?? new MemoryBudgetStore();
  const registrationLimiter = deps.registrationLimiter ?? createMemoryRegistrationLimiter();
  const clustered = deps.adapter !== undefined;
  const startedAt = Date.now();

  // The HTTP handler must be registered before Socket.IO attaches: Engine.IO takes over the
  // existing request listeners and calls them only for paths that are not its own.
  let handleHttp: RequestListener = (_request, response) => response.end();
  const onRequest: RequestListener = (request, response) => handleHttp(request, response);
  // Absolute deadlines from the start of a request, which trickling bytes do not extend. Node checks
  // them every connectionsCheckingInterval (30 s by default, far too late for a slowloris), and only
  // once the server listens: a cluster worker (listen: false) gets them from enforceRequestDeadlines
  // below. A TLS handshake gets header_timeout too (Node's default is 120 s).
  const deadlines = {
    headersTimeout: config.headerTimeoutMs,
    requestTimeout: config.readTimeoutMs,
    connectionsCheckingInterval: DEADLINE_CHECK_MS,
  };
  const tls = config.tlsCert !== "";
  const httpServer: HttpServer = tls
    ? createHttpsServer({ cert: readFileSync(config.tlsCert), key: readFileSync(config.tlsKey), handshakeTimeout: config.headerTimeoutMs, ...deadlines }, onRequest)
    : createHttpServer(deadlines, onRequest);

  const io = new SocketIoServer(httpServer, {
    path: SOCKET_IO_PATH,
    serveClient: false,
    pingInterval: config.pingIntervalMs,
    // Socket.IO waits pingTimeout after each ping; pong_wait counts from the last sign of life.
    pingTimeout: Math.max(1, config.pongWaitMs - config.pingIntervalMs),
    // Packets up to twice max_message_size are read, so one over the limit gets its notice before
    // the close (bindSocketIo); Engine.IO cuts larger ones unread.
    maxHttpBufferSize: 2 * config.maxMessageSize,
    parser: socketIoParser,
    perMessageDeflate: config.compressionEnabled ? { threshold: 1024 } : false,
    httpCompression: config.compressionEnabled,
    cors: { origin: true },
    destroyUpgrade: false,
    // Runs for every new Engine.IO session (polling or WebSocket) before it exists: see admission.
    allowRequest: (request, callback) => admission.admitSession(request, callback),
    ...(deps.adapter === undefined ? {} : { adapter: deps.adapter }),
  });
  // After Engine.IO attached: it takes over the 'request' listeners present when it does.
  if (deps.listen === false) enforceRequestDeadlines(httpServer, { headerTimeoutMs: config.headerTimeoutMs, readTimeoutMs: config.readTimeoutMs, tls });
  if (deps.generateSessionId !== undefined) {
    const generate = deps.generateSessionId;
    io.engine.generateId = () => generate();
  }
  const nsp = io.of("/");

  const links = deps.directLinks;
  const delivery = createSocketDelivery({
    io,
    logger,
    clustered,
    ...(links === undefined ? {} : { links }),
    // Deliveries arrive only after start(), when `hub` exists.
    deliverEncoded: (fingerprint, type, bodyJson) => hub.deliverEncoded(fingerprint, type, bodyJson),
  });

  const hub = new Hub({
    config,
    store,
    delivery,
    budgetStore,
    registrationLimiter,
    logger,
    nodeId,
  });
  installRecipientFilter(nsp, hub.joinGate);
  const localConnections = (): number => raw.connectionCount + io.engine.clientsCount;
  const admission = new Admission(deps.overCapacity ?? (() => localConnections() >= config.maxPeers), () => hub.isAccepting);
  admission.watchSessions(io.engine);
  const raw = new RawWebSocketTransport(config, hub, nsp, logger, admission);
  bindSocketIo(io, hub, config, admission);

  const localStats = (detail: boolean): WorkerStats => {
    const connections: Record<string, number> = { ws: 0, "socket.io": 0 };
    const peers: string[] = [];
    for (const session of hub.sessions()) {
      connections[session.connection.transport] = (connections[session.connection.transport] ?? 0) + 1;
      if (detail && session.fingerprint !== undefined) peers.push(session.fingerprint);
    }
    return detail ? { node_id: nodeId, pid: process.pid, connections, peers } : { node_id: nodeId, pid: process.pid, connections };
  };
  if (clustered) {
    io.on(CLOSE_EVENT, (connectionId: string, code: ErrorCode, closeCode: CloseCode, message: string) => {
      hub.closeLocal(connectionId, code, closeCode, message);
    });
    io.on(STATS_EVENT, (detail: boolean, reply: (stats: WorkerStats) => void) => reply(localStats(detail)));
  }
  const allStats = async (detail: boolean): Promise<WorkerStats[]> => {
    if (!clustered) return [localStats(detail)];
    // Every cross-process call is bounded: a worker that does not answer in time is left out.
    let timer: NodeJS.Timeout | undefined;
    const others = await Promise.race([
      (io.serverSideEmitWithAck(STATS_EVENT, detail) as Promise<WorkerStats[]>).catch(() => [] as WorkerStats[]),
      new Promise<WorkerStats[]>((resolve) => (timer = setTimeout(() => resolve([]), 1_000))),
    ]);
    clearTimeout(timer);
    return [localStats(detail), ...others].sort((a, b) => a.node_id.localeCompare(b.node_id));
  };

  httpServer.on("upgrade", (request, socket, head: Buffer) => {
    const url = request.url ?? "";
    if (url.startsWith(SOCKET_IO_PATH)) return; // Engine.IO's own upgrade listener takes it
    if (url.split("?", 1)[0] === RAW_WS_PATH) {
      raw.handleUpgrade(request, socket, head);
      return;
    }
    socket.end("HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
  });

  handleHttp = createHttpHandler(
      {
        accepting: () => hub.isAccepting,
        backends: deps.backends ?? (() => ({})),
        maxPeers: config.maxPeers,
        snapshot: async (detail) => {
          const [stats, workers] = await Promise.all([store.stats(), allStats(detail)]);
          return { ...stats, workers };
        },
      },
      startedAt,
  );
  deps.attach?.(io, httpServer);

  let started: Promise<AddressInfo | undefined> | undefined;
  let closed: Promise<void> | undefined;
  return {
    nodeId,
    start() {
      started ??= new Promise<AddressInfo | undefined>((resolve, reject) => {
        raw.start();
        if (deps.listen === false) {
          resolve(undefined);
          return;
        }
        httpServer.once("error", reject);
        httpServer.listen(config.port, config.host, () => {
          httpServer.off("error", reject);
          resolve(httpServer.address() as AddressInfo);
        });
      });
      return started;
    },
    connectionCount: localConnections,
    announceDepartures(departures, everywhere) {
      hub.announceRemoved(departures, everywhere);
    },
    storeRecovered: (stateLost, settleMs) => hub.storeRecovered(stateLost, settleMs),
    close() {
      closed ??= (async () => {
        hub.stopAccepting();
        const sessions = [...hub.sessions()];
        for (const session of sessions) {
          closeWithNotice(session.connection, ErrorCode.Unavailable, CloseCode.GoingAway, "server shutting down");
        }
        // Every peer is unregistered (and its namespaces told) before the backends close.
        await Promise.all(sessions.map((session) => hub.close(session)));
        raw.close(CloseCode.GoingAway, "server shutting down");
        // A client that stopped reading never finishes its close handshake: wait at most
        // write_timeout for the rest, then cut what is left.
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([io.close(), new Promise<void>((resolve) => (timer = setTimeout(resolve, config.writeTimeoutMs)))]);
        clearTimeout(timer);
        httpServer.closeAllConnections();
        await links?.close();
        // An injected store belongs to whoever made it (it may still need it, e.g. to leave Redis cleanly).
        if (deps.store === undefined) await store.close();
        if (deps.budgetStore === undefined) await budgetStore.close();
      })();
      return closed;
    },
  };
}
