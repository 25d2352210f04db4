import nodeCluster from "node:cluster";
import { randomBytes } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { hostname } from "node:os";
import type { Config } from "../config/load.ts";
import { connectClusterBackends, type ClusterBackends } from "../backends/cluster/cluster-backends.ts";
import { addressRegistrations } from "../backends/registration-limiter.ts";
import { connectRedisBackends, type RedisBackends } from "../backends/redis/redis-backends.ts";
import { startBurstReclaim } from "../process/burst-reclaim.ts";
import { Shutdown } from "../process/shutdown.ts";
import { instanceName, orExitOnLibraryMismatch, startOrExit } from "../process/start-up.ts";
import type { Logger } from "../observability/logger.ts";
import { answerPrimaryScrapes } from "../observability/prometheus-cluster.ts";
import { createProcessMetrics } from "../process/observability.ts";
import { exhaustive, primaryToWorkerGuard, type FromPrimary, type FromWorker, type PrimaryToWorker, type WorkerToPrimary } from "../protocol/cluster-messages.ts";
import { createServer, type PeerServer } from "../server.ts";
import { Bundler, coalescing, parentChannel } from "../backends/cluster/channel.ts";
import { DirectLinks } from "../delivery/direct-links.ts";
import { systemClock } from "../core/context.ts";
import { onClockTicks } from "./clock-ticks.ts";
import { HandOffReceiver } from "./hand-off.ts";
import { WorkerAcceptor } from "./worker-acceptor.ts";

/** How long a worker waits for the primary's state store before failing a call with 503. */
const STORE_CALL_TIMEOUT_MS = 5_000;
/**
 * How long a worker waits for the primary's limits: then a registration is decided by the worker's
 * own insurance limiter and a budget call gives the connection a fresh budget (see ClusterLimits).
 */
const LIMITS_CALL_TIMEOUT_MS = 1_000;
/**
 * How often a worker reports its connections to the primary, on the ticks of the machine's clock
 * that are multiples of it, the same for every worker. Between reports the primary adds the
 * connections it placed on each worker but sees no closes; with reports at different moments, a
 * worker that has just reported looks emptier than the others by all the closes they have not
 * reported yet, and gets (or is moved) every new connection until they do.
 */
const LOAD_REPORT_MS = 1_000;
/** How long a connection this worker accepted waits for the primary's admission before it is answered 503. */
const ADMISSION_TIMEOUT_MS = 5_000;
/**
 * How long a worker whose primary is gone may take to close what it can (tell its peers 1001,
 * close the transports) before it exits. Every call to the primary fails at once by then, so the
 * close is short; the bound caps it whatever it still waits on.
 */
const PRIMARY_LOST_GRACE_MS = 1_000;

/**
 * A cluster worker: a full server. Over plain HTTP it accepts connections on the machine's port
 * itself (WorkerAcceptor: the primary places new long-lived ones and moves those another worker
 * owns); over TLS the primary hands it connections (HandOffReceiver replays the bytes read, if
 * any). With the local broker the state lives in a replica of the primary's store and every
 * message for another worker of the machine takes a direct link (the cluster adapter carries only
 * server-side events); with Redis, the worker is a node of its own (Redis store and adapter) and
 * reaches the others through Redis, like any node.
 *
 * Stopping: the primary's `stop` message or a SIGTERM begins the graceful shutdown, bounded by
 * shutdown_timeout; a second SIGTERM during it exits at once. SIGINT is ignored: Ctrl-C reaches the
 * whole process group, and the primary decides (a second Ctrl-C makes it kill the workers). When the
 * channel to the primary closes, whatever the shutdown's state, every call to the primary fails at
 * once and the worker exits within PRIMARY_LOST_GRACE_MS.
 */
export async function runWorker(config: Config, index: number, workers: number, logger: Logger): Promise<void> {
  const machine = `${hostname()}-${process.ppid}`;
  const nodeId = `${machine}.w${index}-${process.pid}-${randomBytes(3).toString("hex")}`;
  // The primary's scrapes are answered from the start: a worker never leaves one waiting. The
  // default process metrics carry the worker's index, so that they stay apart once aggregated.
  const metrics = createProcessMetrics(config, { worker: String(index) });
  if (metrics !== undefined) answerPrimaryScrapes(metrics.registry);
  const fromPrimary = primaryToWorkerGuard((ps, problem) => logger.warn({ ps, problem }, "dropped a malformed message from the primary"));
  const parent = parentChannel<FromWorker, FromPrimary>(fromPrimary);
  // Everything but the forwarding of sockets goes out in one write a turn (see Bundler).
  const bundler = new Bundler<WorkerToPrimary>();
  const channel = bundler.to(parent);
  const redis = config.brokerType === "redis";
  // Without Redis every message for another worker of the machine takes a direct link; with Redis
  // the worker is a node like any other and reaches the others through Redis.
  const directLinks = redis ? undefined : new DirectLinks(nodeId, machine, logger);
  /** Set once start() has connected them (the primary's answers before that are for the cluster backends' start). */
  let cluster: ClusterBackends | undefined;
  let node: RedisBackends | undefined;
  // The ends of connections the primary counted per address, those of one go in one message.
  const released = coalescing<string>((addresses) => channel.send({ ps: "quota-release", addresses }));
  const handOffs = new HandOffReceiver(released);
  // Over plain HTTP every worker accepts connections itself; over TLS the primary routes them.
  const acceptor =
    config.tlsCert === ""
      ? new WorkerAcceptor({
          index,
          workers,
          config,
          handOffs,
          logger,
          callTimeoutMs: ADMISSION_TIMEOUT_MS,
          send: (message) => channel.send(message),
          sendSocket: (message, socket, done) => {
            if (!process.connected) {
              done(new Error("the channel to the primary is closed"));
              return;
            }
            bundler.flush();
            process.send?.(message, socket, { keepOpen: false }, (error: Error | null) => done(error));
          },
        })
      : undefined;
  const server: PeerServer = orExitOnLibraryMismatch(() =>
    createServer(config, {
      logger,
      nodeId,
      connectBackends: redis
        ? async () => (node = await connectRedisBackends(config, nodeId, instanceName(config, `w${index}`), logger))
        : () =>
            connectClusterBackends(channel, {
              storeCallTimeoutMs: STORE_CALL_TIMEOUT_MS,
              limitsCallTimeoutMs: LIMITS_CALL_TIMEOUT_MS,
              addressRegistrations: addressRegistrations(config),
              // The primary's snapshot comes through the dispatcher below: it must reach them before they resolve.
              onCreated: (backends) => (cluster = backends),
            }),
      generateSessionId: () => `w${index}-${randomBytes(15).toString("base64url")}`,
      listen: false,
      attach: (_io, httpServer) => handOffs.attach(httpServer),
      // The primary counts the whole machine as it places or hands connections over (see HandOffReceiver).
      overCapacity: (request) => handOffs.isOverCapacity(request),
      // So it does per client address, unless it cannot read the requests (TLS): then it routes each
      // address to one worker, which counts it (MachineQuota).
      ...(config.tlsCert === "" ? { countedByPrimary: (request: IncomingMessage) => handOffs.holdOf(request) } : {}),
      ...(directLinks === undefined ? {} : { directLinks }),
      ...(metrics === undefined ? {} : { metrics }),
    }),
  );
  // A stop that comes before the server has started closes it once started (close waits for start).
  const shutdown = new Shutdown({
    deadlineMs: config.shutdownTimeoutMs,
    close: () => {
      acceptor?.close("the worker is stopping");
      return server.close();
    },
    exit: (code) => process.exit(code),
    logger,
  });
  // The worker's one dispatcher of the primary's messages, each checked once by `fromPrimary`.
  const dispatch = (message: PrimaryToWorker, handle: unknown): void => {
    switch (message.ps) {
      case "snapshot":
      case "apply":
      case "result":
      case "batch":
      case "limits-result":
      case "limits-batch":
        cluster?.receive(message);
        break;
      case "reap":
        void node?.reapNode(message.nodeId);
        break;
      case "workers":
        directLinks?.setSiblings(message.nodeIds);
        break;
      case "connection":
        handOffs.receive(message, handle);
        break;
      case "admitted":
        acceptor?.receive(message);
        break;
      case "stop":
        // The whole machine stops (a signal to this worker alone leaves the others and the primary's state).
        cluster?.machineStopping();
        shutdown.begin("the primary is stopping");
        break;
      case "admin-request":
        // Answered for the whole deployment (see AdminForwarding); server.admin never rejects.
        void server.admin(message).then((answer) => channel.send({ ps: "admin-response", id: message.id, ...answer }));
        break;
      default:
        exhaustive(message);
    }
  };
  parent.onMessage((message, handle) => {
    if (message.ps !== "bundle") dispatch(message, handle);
    else for (const item of message.messages) dispatch(item, undefined);
  });

  // Instead of Node's exit at once when the channel closes, the worker tells its peers (1001) and
  // closes what it can within a bound; the calls that wait on the primary fail now.
  parent.onClose(() => {
    logger.warn({ graceMs: PRIMARY_LOST_GRACE_MS }, "the channel to the primary closed");
    cluster?.primaryGone();
    acceptor?.close("the cluster primary is gone");
    shutdown.limit(PRIMARY_LOST_GRACE_MS, "the cluster primary is gone");
  });
  // A write to a channel the primary just closed (EPIPE), by Node's cluster module itself (closing
  // a server tells the primary): without a listener, an uncaught exception.
  nodeCluster.worker?.on("error", (error: Error) => logger.debug({ err: error }, "channel to the primary failed"));
  process.on("SIGTERM", () => shutdown.signal("SIGTERM"));
  process.on("SIGINT", () => undefined);

  await directLinks?.listen();
  await startOrExit(server, config, logger);
  if (shutdown.stopping) return;
  let port: number | undefined;
  if (acceptor !== undefined) {
    try {
      port = await acceptor.listen();
    } catch (error) {
      // Every worker would fail the same way: the primary stops the machine.
      channel.send({ ps: "cannot-listen", message: (error as Error).message });
      return;
    }
  }
  channel.send(port === undefined ? { ps: "ready", nodeId } : { ps: "ready", nodeId, port });
  onClockTicks(systemClock, LOAD_REPORT_MS, () => channel.send({ ps: "load", connections: server.connectionCount(), handOffs: handOffs.handOffsReceived }));
  startBurstReclaim(logger);
}
