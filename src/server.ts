import { readFileSync } from "node:fs";
import { createServer as createHttpServer, type IncomingMessage, type RequestListener, type Server as HttpServer } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { hostname } from "node:os";
import { Server as SocketIoServer } from "socket.io";
import type { Backends } from "./backends/backends.ts";
import { memoryBackends } from "./backends/memory/memory-backends.ts";
import { addressRegistrations } from "./backends/registration-limiter.ts";
import type { Config } from "./config/load.ts";
import type { DirectLinks } from "./delivery/direct-links.ts";
import { Hub, closeWithNotice } from "./core/hub.ts";
import { enforceRequestDeadlines } from "./http/request-deadlines.ts";
import { assertLibraryInternals, quietRepeatedReceiverEnds } from "./internals/library-internals.ts";
import { createHttpHandler, statsBody, type WorkerStats } from "./http/routes.ts";
import { loadClientSite, projectRoot } from "./http/client-site.ts";
import { Admission } from "./limits/admission.ts";
import type { AddressHold } from "./limits/address-quota.ts";
import { BanList } from "./limits/bans.ts";
import { normalizeAddress } from "./trust/client-address.ts";
import { createConnectionGate } from "./limits/connection-gate.ts";
import { accessTokenVerifier } from "./trust/access-tokens.ts";
import { adminApi, type AdminAnswer, type AdminRequest } from "./admin/admin-api.ts";
import type { Logger } from "./observability/logger.ts";
import { noMetrics, type Metrics } from "./observability/metrics.ts";
import { CloseCode, ErrorCode } from "./protocol/errors.ts";
import { installConnectionEntry } from "./transport/connection-entry.ts";
import { NativeWsProtocol } from "./transport/raw-ws.ts";
import { oversizeReadLimit, WsEndpoint } from "./transport/ws-endpoint.ts";
import { ConnectionIds } from "./transport/ws-connection.ts";
import { createDialects } from "./dialects/catalog.ts";
import type { DeploymentFigures } from "./dialects/dialect.ts";
import { installRecipientFilter } from "./delivery/join-fence.ts";
import { CLOSE_EVENT, createSocketDelivery } from "./delivery/socket-delivery.ts";
import { bindSocketIo } from "./transport/socketio.ts";
import { socketIoParser } from "./transport/socketio-parser.ts";

export const SOCKET_IO_PATH = "/socket.io/";
export const RAW_WS_PATH = "/ws";

/** Server-to-server event between processes of one deployment (carried by the adapter). */
const STATS_EVENT = "peer-server:stats";
/** Server-to-server event: a ban was made or lifted; each process reads the bans and closes what they cover, and answers how many. */
const BANS_EVENT = "peer-server:bans";
/** How long a question to every other process (STATS_EVENT, BANS_EVENT) waits: who did not answer by then is left out. */
const EVERY_PROCESS_TIMEOUT_MS = 1_000;
/** How often each process reads the bans again, in case it missed a BANS_EVENT. */
const BAN_REFRESH_MS = 5_000;
/** How often Node looks for requests past header_timeout / read_timeout: they are cut at most this late. */
const DEADLINE_CHECK_MS = 250;

export interface ServerDeps {
  logger: Logger;
  /** This process's id in the deployment. */
  nodeId?: string;
  /**
   * Connects what this process shares its world through; start() calls it first, close() closes
   * what it returned last. Default: the embedded memory backends (one process alone).
   */
  connectBackends?: () => Promise<Backends>;
  /** Engine.IO session id generator, so a front router can tell which process owns a session. */
  generateSessionId?: () => string;
  /** When false, the server does not listen: a cluster primary hands it connections. */
  listen?: boolean;
  /** Called with the Socket.IO and HTTP servers before they accept anything (cluster worker hooks). */
  attach?: (io: SocketIoServer, httpServer: HttpServer) => void;
  /** One-hop delivery to the other workers of the machine (cluster workers without Redis). */
  directLinks?: DirectLinks;
  /**
   * Whether the machine already held max_peers connections when this request's connection
   * arrived; decided by the cluster primary for its workers. Default: this process's own count.
   */
  overCapacity?: (request: IncomingMessage) => boolean;
  /**
   * When given, a cluster primary counts the connections per client address as it places or hands
   * them over (the hold it took for this request's connection, if any), and this process counts
   * none itself.
   * Default: this process counts its own.
   */
  countedByPrimary?: (request: IncomingMessage) => AddressHold | undefined;
  /** What the core, the transports and delivery count and time (metrics_enabled). Default: noMetrics, which does nothing. */
  metrics?: Metrics;
}

/** Which step of start() failed: reaching the backends, or listening. */
export class StartError extends Error {
  constructor(
    readonly step: "backends" | "listen",
    cause: unknown,
  ) {
    super((cause as Error).message, { cause });
    this.name = "StartError";
  }
}

export interface PeerServer {
  readonly nodeId: string;
  /**
   * Connects the backends, wires the server, listens (unless deps.listen is false) and attaches
   * the backends to it; resolves with the bound address. Rejects with a StartError. Safe to call twice.
   */
  start(): Promise<AddressInfo | undefined>;
  /** Connections open on this process, raw and Engine.IO, registered or not: what max_peers counts. */
  connectionCount(): number;
  /**
   * Answers a request of the admin API (src/admin/admin-api.ts) from this process: the shared
   * state, and its reach to every other process of the deployment. 503 before start() has wired it.
   */
  admin(request: AdminRequest): Promise<AdminAnswer>;
  /**
   * Stops accepting, tells every peer (close 1001) and unregisters it (with Redis and resume on,
   * suspends it for another node to resume), closes the transports (at most write_timeout for slow
   * peers), then the backends. Safe to call twice.
   */
  close(): Promise<void>;
}

/** What createServer builds once the backends are connected. */
interface Running {
  hub: Hub;
  admin(request: AdminRequest): Promise<AdminAnswer>;
  listen(): Promise<AddressInfo | undefined>;
  connectionCount(): number;
  /** Everything but the backends, in shutdown order. */
  drain(): Promise<void>;
}

/**
 * The one place that wires config, backends, core, delivery and transports into a server, and owns
 * its lifecycle: connect backends -> wire -> listen -> attach backends; close: stop accepting ->
 * drain -> close transports -> close backends. Throws a LibraryInternalsError, before anything,
 * when the installed socket.io libraries are not the ones src/internals/ was verified against.
 */
export function createServer(config: Config, deps: ServerDeps): PeerServer {
  assertLibraryInternals();
  quietRepeatedReceiverEnds();
  const nodeId = deps.nodeId ?? `${hostname()}-${process.pid}`;
  let backends: Backends | undefined;
  let running: Running | undefined;
  let started: Promise<AddressInfo | undefined> | undefined;
  let closed: Promise<void> | undefined;
  return {
    nodeId,
    start() {
      started ??= (async () => {
        try {
          backends = await (deps.connectBackends ?? (async () => memoryBackends(addressRegistrations(config))))();
        } catch (error) {
          throw new StartError("backends", error);
        }
        const wired = (running = wire(config, deps, nodeId, backends));
        let address: AddressInfo | undefined;
        try {
          address = await wired.listen();
        } catch (error) {
          throw new StartError("listen", error);
        }
        await backends.attach({
          announceDepartures: (departures, everywhere) => wired.hub.announceRemoved(departures, everywhere),
          storeRecovered: (stateLost, settleMs) => wired.hub.storeRecovered(stateLost, settleMs),
        });
        wired.hub.start();
        return address;
      })();
      return started;
    },
    connectionCount: () => running?.connectionCount() ?? 0,
    admin: (request) => running?.admin(request) ?? Promise.resolve({ status: 503, body: JSON.stringify({ error: "the server is starting" }) }),
    close() {
      closed ??= (async () => {
        await started?.catch(() => undefined);
        await running?.drain();
        await backends?.close();
      })();
      return closed;
    },
  };
}

/** Builds the server on connected backends. */
function wire(config: Config, deps: ServerDeps, nodeId: string, backends: Backends): Running {
  const { logger } = deps;
  const metrics = deps.metrics ?? noMetrics;
  const { store } = backends;
  const clustered = backends.adapter !== undefined;
  const startedAt = Date.now();

  // The HTTP handler must be registered before Socket.IO attaches: Engine.IO takes over the
  // existing request listeners and calls them only for paths that are not its own.
  let handleHttp: RequestListener = (_request, response) => response.end();
  const onRequest: RequestListener = (request, response) => handleHttp(request, response);
  // Absolute deadlines from the start of a request, which trickling bytes do not extend. Node checks
  // them every connectionsCheckingInterval (30 s by default, far too late for a slowloris), and only
  // once the server listens. A cluster worker (listen: false) gets complete requests from its router
  // over plain HTTP, which enforced both; over TLS, from enforceRequestDeadlines below. A TLS
  // handshake gets header_timeout too (Node's default is 120 s).
  const deadlines = {
    headersTimeout: config.headerTimeoutMs,
    requestTimeout: config.readTimeoutMs,
    connectionsCheckingInterval: DEADLINE_CHECK_MS,
  };
  const tls = config.tlsCert !== "";
  const httpServer: HttpServer = tls
    ? createHttpsServer({ cert: readFileSync(config.tlsCert), key: readFileSync(config.tlsKey), handshakeTimeout: config.headerTimeoutMs, ...deadlines }, onRequest)
    : createHttpServer(deadlines, onRequest);

  // Read on every connection and registration without a store call; every process reads it again
  // when a ban changes (BANS_EVENT) and every BAN_REFRESH_MS.
  const bans = new BanList({ store, now: Date.now, onError: (error) => logger.warn({ err: error }, "could not read the bans") });
  const tokens = accessTokenVerifier(config);
  const gate = createConnectionGate(config, { tokens, addressBanned: (address) => bans.addressBanned(address), countedByPrimary: deps.countedByPrimary });
  const origins = gate.origins;
  const io = new SocketIoServer(httpServer, {
    path: SOCKET_IO_PATH,
    serveClient: false,
    pingInterval: config.pingIntervalMs,
    // Socket.IO waits pingTimeout after each ping; pong_wait counts from the last sign of life.
    pingTimeout: Math.max(1, config.pongWaitMs - config.pingIntervalMs),
    // Packets up to twice max_message_size are read, so one over the limit gets its notice before
    // the close (bindSocketIo); Engine.IO cuts larger ones unread.
    maxHttpBufferSize: oversizeReadLimit(config.maxMessageSize),
    parser: socketIoParser,
    perMessageDeflate: config.compressionEnabled ? { threshold: 1024 } : false,
    httpCompression: config.compressionEnabled,
    // allowed_origins: `*` reflects every origin; otherwise only a listed one is named in the answer.
    cors: { origin: origins.allowsAll ? true : (origin, callback) => callback(null, origins.allowed(origin)) },
    destroyUpgrade: false,
    // Runs for every new Engine.IO session (polling or WebSocket) before it exists: see admission.
    allowRequest: (request, callback) => admission.admitSession(request, callback),
    ...(backends.adapter === undefined ? {} : { adapter: backends.adapter }),
  });
  // Every plain-WebSocket endpoint by its exact path: the native protocol at /ws and each dialect's.
  const endpoints: WsEndpoint[] = [];
  const endpointByPath = new Map<string, WsEndpoint>();
  // Right after Engine.IO attached: every connection passes the gate first, on every path.
  installConnectionEntry(httpServer, { gate, socketIoPath: SOCKET_IO_PATH, endpoints: endpointByPath, logger });
  gate.watchSessions(io.engine);
  // After Engine.IO attached: it takes over the 'request' listeners present when it does.
  if (deps.listen === false && tls) enforceRequestDeadlines(httpServer, { headerTimeoutMs: config.headerTimeoutMs, readTimeoutMs: config.readTimeoutMs, tls });
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
    metrics,
  });

  const hub = new Hub({
    config,
    store,
    delivery,
    bans,
    budgetStore: backends.budgetStore,
    registrationLimits: backends.registrationLimits,
    ...(backends.peerChannels === undefined ? {} : { peerChannels: backends.peerChannels }),
    ...(tokens === undefined ? {} : { accessTokens: tokens }),
    logger,
    nodeId,
    metrics,
  });
  installRecipientFilter(nsp, hub.joinGate, metrics === noMetrics ? undefined : (receivedAt) => metrics.signalDelivered(receivedAt));
  const localConnections = (): number => {
    let count = io.engine.clientsCount;
    for (const endpoint of endpoints) count += endpoint.connectionCount;
    return count;
  };
  const admission = new Admission(deps.overCapacity ?? (() => localConnections() >= config.maxPeers), () => hub.isAccepting);
  admission.watchSessions(io.engine);
  const ids = new ConnectionIds();
  const mount = (paths: readonly string[], endpoint: WsEndpoint): void => {
    endpoints.push(endpoint);
    for (const path of paths) endpointByPath.set(path, endpoint);
  };
  mount([RAW_WS_PATH], new WsEndpoint(new NativeWsProtocol(config, hub), config, hub, nsp, logger, admission, ids, metrics));
  const dialects = createDialects({
    config,
    hub,
    deployment: () => deployment(),
    // Only public scopes are listed to a requester that is no member; nothing registers under this name.
    members: (scope, limit) => store.listMembers(scope, "", limit),
    startedAt,
    nodeId,
  });
  for (const dialect of dialects) mount(dialect.wsPaths, new WsEndpoint(dialect.protocol, config, hub, nsp, logger, admission, ids, metrics));
  const socketIo = bindSocketIo(io, hub, config, admission, gate, metrics);

  const localStats = (detail: boolean): WorkerStats => {
    // The connections max_peers counts (localConnections), by transport: admitted or not yet refused,
    // registered or not, Engine.IO sessions from their handshake on.
    const connections: Record<string, number> = { "socket.io": io.engine.clientsCount };
    for (const endpoint of endpoints) connections[endpoint.name] = endpoint.connectionCount;
    if (!detail) return { node_id: nodeId, pid: process.pid, connections };
    const peers: string[] = [];
    for (const session of hub.sessions()) if (session.fingerprint !== undefined) peers.push(session.fingerprint);
    return { node_id: nodeId, pid: process.pid, connections, peers };
  };
  metrics.track({
    connections: () => localStats(false).connections,
    peers: () => {
      let peers = 0;
      for (const session of hub.sessions()) if (session.fingerprint !== undefined) peers++;
      return peers;
    },
    redisUp: () => {
      const redis = backends.health()["redis"];
      return redis === undefined ? undefined : redis === "up";
    },
  });
  if (clustered) {
    io.on(CLOSE_EVENT, (connectionId: string, code: ErrorCode, closeCode: CloseCode, message: string) => {
      hub.closeLocal(connectionId, code, closeCode, message);
    });
    io.on(STATS_EVENT, (detail: boolean, reply: (stats: WorkerStats) => void) => reply(localStats(detail)));
    io.on(BANS_EVENT, (reply: (closed: number) => void) => void takeUpBans().then(reply));
  }
  /** Asks every other process of the deployment; who does not answer within EVERY_PROCESS_TIMEOUT_MS is left out. */
  const everyOther = async <T>(event: string, ...args: unknown[]): Promise<T[]> => {
    if (!clustered) return [];
    let timer: NodeJS.Timeout | undefined;
    const answers = await Promise.race([
      (io.serverSideEmitWithAck(event, ...args) as Promise<T[]>).catch(() => [] as T[]),
      new Promise<T[]>((resolve) => (timer = setTimeout(() => resolve([]), EVERY_PROCESS_TIMEOUT_MS))),
    ]);
    clearTimeout(timer);
    return answers;
  };
  const allStats = async (detail: boolean): Promise<WorkerStats[]> => {
    const others = await everyOther<WorkerStats>(STATS_EVENT, detail);
    return [localStats(detail), ...others].sort((a, b) => a.node_id.localeCompare(b.node_id));
  };
  /** Reads the bans again and closes this process's connections they cover; resolves with how many. */
  const takeUpBans = async (): Promise<number> => {
    await bans.refresh();
    return hub.moderation.closeBanned();
  };
  /** Every process of the deployment takes the bans up; resolves with how many connections were closed. */
  const bansChanged = async (): Promise<number> => {
    const [here, others] = await Promise.all([takeUpBans(), everyOther<number>(BANS_EVENT)]);
    return others.reduce((sum, closed) => sum + closed, here);
  };

  const snapshot = async (detail: boolean) => {
    const [stats, workers] = await Promise.all([store.stats(), allStats(detail)]);
    return { ...stats, workers };
  };
  const deployment = async (): Promise<DeploymentFigures> => {
    const { workers, ...stats } = await snapshot(false);
    const connections: Record<string, number> = {};
    for (const worker of workers) {
      for (const [transport, count] of Object.entries(worker.connections)) connections[transport] = (connections[transport] ?? 0) + count;
    }
    return { ...stats, connections };
  };
  // /stats lists the native protocol's namespaces; a dialect's scopes (names with a `/`, which no
  // native name can hold) are counted by that dialect's own endpoints.
  const nativeNamespaces = (namespaces: Record<string, number>): Record<string, number> =>
    Object.fromEntries(Object.entries(namespaces).filter(([name]) => !name.includes("/")));
  const publicSnapshot = async (detail: boolean) => {
    const figures = await snapshot(detail);
    return { ...figures, namespaces: nativeNamespaces(figures.namespaces) };
  };
  // The SDK's browser bundle, the demo and the examples: read from disk once, here.
  const clientSite = loadClientSite(projectRoot());
  const handleCore = createHttpHandler(
    { accepting: () => hub.isAccepting, backends: () => backends.health(), maxPeers: config.maxPeers, snapshot: publicSnapshot },
    startedAt,
  );
  const admin = adminApi(
    {
      stats: async (peers) => statsBody(await publicSnapshot(peers), config.maxPeers, startedAt),
      namespaces: async () => {
        const stats = await store.stats();
        return { totalPeers: stats.totalPeers, namespaces: nativeNamespaces(stats.namespaces) };
      },
      members: (name, limit, offset) => store.listMembers(name, null, limit, offset),
      room: (roomId) => store.roomInfo(roomId),
      peer: (fingerprint) => store.peerDetails(fingerprint),
      disconnect: (fingerprint, reason) => hub.moderation.disconnect(fingerprint, reason === "" ? undefined : reason),
      addBan: (ban) => store.addBan(ban, Date.now()),
      listBans: () => store.listBans(Date.now()),
      removeBan: (id) => store.removeBan(id, Date.now()),
      bansChanged,
      normalizeAddress,
      now: Date.now,
    },
    { onError: (error) => logger.error({ err: error }, "admin request failed") },
  );
  handleHttp = (request, response) => {
    if (request.method === "GET" || request.method === "HEAD") {
      const path = (request.url ?? "/").split("?", 1)[0] ?? "/";
      for (const dialect of dialects) if (dialect.handleHttp?.(path, request, response) === true) return;
      if (clientSite(path, request, response)) return;
    }
    handleCore(request, response);
  };
  deps.attach?.(io, httpServer);

  return {
    hub,
    admin,
    listen: async () => {
      // Bans are in force from the first connection on.
      await bans.start(BAN_REFRESH_MS, () => hub.moderation.closeBanned());
      return new Promise<AddressInfo | undefined>((resolve, reject) => {
        for (const endpoint of endpoints) endpoint.start();
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
    },
    connectionCount: localConnections,
    async drain() {
      hub.stopAccepting();
      bans.stop();
      const sessions = [...hub.sessions()];
      // Every peer is unregistered (and its namespaces told), or with Redis suspended for another
      // node to resume (resume_grace), before the backends close. The cleanups begin before the
      // notices, whose close would begin them as an ordinary close by the server: each knows it is
      // the server's stop (see Registration.release).
      const end = { code: CloseCode.GoingAway, reason: "server shutting down", byServer: true, serverStop: true } as const;
      const cleanups = sessions.map((session) => hub.close(session, end));
      for (const session of sessions) {
        closeWithNotice(session.connection, ErrorCode.Unavailable, CloseCode.GoingAway, "server shutting down");
      }
      await Promise.all(cleanups);
      for (const endpoint of endpoints) endpoint.close(CloseCode.GoingAway, "server shutting down");
      // A client that stopped reading never finishes its close handshake: wait at most
      // write_timeout for the rest, then cut what is left.
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<void>((resolve) => (timer = setTimeout(resolve, config.writeTimeoutMs)));
      // The Socket.IO connections first write their notices and disconnect packets and close; then
      // Socket.IO's close cuts what is left (it discards what an engine still holds).
      await Promise.race([socketIo.closed(), deadline]);
      await Promise.race([io.close(), deadline]);
      clearTimeout(timer);
      httpServer.closeAllConnections();
      await links?.close();
    },
  };
}
