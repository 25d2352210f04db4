import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { createAdapter } from "@socket.io/cluster-adapter";
import type { Config } from "../config/load.ts";
import { ClusterLimits } from "../limits/cluster-limits.ts";
import { connectBrokerOrExit, instanceName, orExitOnLibraryMismatch, shutDown } from "../main.ts";
import type { Logger } from "../observability/logger.ts";
import { exhaustive, primaryToWorkerGuard, type PrimaryToWorker, type WorkerToPrimary } from "../protocol/cluster-messages.ts";
import { createServer, type PeerServer, type ServerDeps } from "../server.ts";
import { parentChannel } from "../state/channel.ts";
import { ReplicatedStore } from "../state/replicated-store.ts";
import { DirectLinks } from "../delivery/direct-links.ts";
import { HandOffReceiver } from "./hand-off.ts";

/** How long a worker waits for the primary's state store before failing a call with 503. */
const STORE_CALL_TIMEOUT_MS = 5_000;
/**
 * How long a worker waits for the primary's limits: then a registration is decided by the worker's
 * own insurance limiter and a budget call gives the connection a fresh budget (see ClusterLimits).
 */
const LIMITS_CALL_TIMEOUT_MS = 1_000;
const LOAD_REPORT_MS = 1_000;

/**
 * A cluster worker: a full server that does not listen. The primary hands it connections
 * (HandOffReceiver replays the bytes the router read). With the local broker the state lives in a
 * replica of the primary's store and every message for another worker of the machine takes a
 * direct link (the cluster adapter carries only server-side events); with Redis, the worker is a
 * node of its own (Redis store and adapter) and reaches the others through Redis, like any node.
 */
export async function runWorker(config: Config, index: number, logger: Logger): Promise<void> {
  const machine = `${hostname()}-${process.ppid}`;
  const nodeId = `${machine}.w${index}-${process.pid}-${randomBytes(3).toString("hex")}`;
  const fromPrimary = primaryToWorkerGuard((ps, problem) => logger.warn({ ps, problem }, "dropped a malformed message from the primary"));
  const channel = parentChannel<WorkerToPrimary, PrimaryToWorker>(fromPrimary);
  let directLinks: DirectLinks | undefined;
  /** With the local broker: the replica of the primary's store and the client of its limits. */
  let replica: ReplicatedStore | undefined;
  let limits: ClusterLimits | undefined;
  const handOffs = new HandOffReceiver();
  // The worker's one dispatcher of the primary's messages, each checked once by `fromPrimary`.
  channel.onMessage((message, handle) => {
    switch (message.ps) {
      case "snapshot":
      case "apply":
      case "result":
      case "batch":
        replica?.receive(message);
        break;
      case "limits-result":
      case "limits-batch":
        limits?.receive(message);
        break;
      case "reap":
        void broker?.reapNode(message.nodeId);
        break;
      case "workers":
        directLinks?.setSiblings(message.nodeIds);
        break;
      case "connection":
        handOffs.receive(message, handle);
        break;
      default:
        exhaustive(message);
    }
  });

  const broker = await connectBrokerOrExit(config, nodeId, instanceName(config, `w${index}`), logger);
  let backend: Pick<ServerDeps, "store" | "adapter" | "backends" | "registrationLimiter" | "budgetStore">;
  if (broker === undefined) {
    const store = (replica = new ReplicatedStore(channel, {
      callTimeoutMs: STORE_CALL_TIMEOUT_MS,
      // Departures arrive only after start(), when `server` exists.
      onDepartures: (departures) => server.announceDepartures(departures, false),
    }));
    await store.start();
    // Registrations and message budgets are the machine's: the primary keeps them for every worker.
    limits = new ClusterLimits(channel, { callTimeoutMs: LIMITS_CALL_TIMEOUT_MS });
    backend = { store, adapter: createAdapter(), registrationLimiter: limits.registrations, budgetStore: limits.budgets };
  } else {
    backend = {
      store: broker.store,
      adapter: broker.adapter,
      backends: broker.backends,
      registrationLimiter: broker.registrationLimiter,
      budgetStore: broker.budgetStore,
    };
  }
  if (broker === undefined) {
    directLinks = new DirectLinks(nodeId, machine, logger);
    await directLinks.listen();
  }
  const server: PeerServer = orExitOnLibraryMismatch(() =>
    createServer(config, {
      logger,
      nodeId,
      ...backend,
      generateSessionId: () => `w${index}-${randomBytes(15).toString("base64url")}`,
      listen: false,
      attach: (_io, httpServer) => handOffs.attach(httpServer),
      // The primary counts the whole machine as it hands connections over (see HandOffReceiver).
      overCapacity: (request) => handOffs.isOverCapacity(request),
      ...(directLinks === undefined ? {} : { directLinks }),
    }),
  );
  await server.start();
  await broker?.attach(server);
  channel.send({ ps: "ready", nodeId });
  setInterval(() => channel.send({ ps: "load", connections: server.connectionCount(), handOffs: handOffs.handOffsReceived }), LOAD_REPORT_MS).unref();

  process.on("SIGTERM", () => shutDown(server, broker, config, logger));
  process.on("SIGINT", () => undefined); // the primary decides; Ctrl-C reaches it too
}
