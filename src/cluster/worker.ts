import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { createAdapter } from "@socket.io/cluster-adapter";
import { setupWorker } from "@socket.io/sticky";
import type { Config } from "../config/load.ts";
import { connectBrokerOrExit, instanceName, shutDown } from "../main.ts";
import type { Logger } from "../observability/logger.ts";
import { isPrimaryToWorker, type PrimaryToWorker, type WorkerToPrimary } from "../protocol/cluster-messages.ts";
import { createServer, type PeerServer, type ServerDeps } from "../server.ts";
import { parentChannel } from "../state/channel.ts";
import { ReplicatedStore } from "../state/replicated-store.ts";
import { DirectLinks } from "./direct-links.ts";

/** How long a worker waits for the primary's state store before failing a call with 503. */
const STORE_CALL_TIMEOUT_MS = 5_000;
const LOAD_REPORT_MS = 1_000;

/**
 * A cluster worker: a full server that does not listen. The primary hands it connections
 * (@socket.io/sticky's setupWorker replays the bytes the router read). With the local broker the
 * cluster adapter carries room emits between workers and the state lives in a replica of the
 * primary's store; with Redis, the worker is a node of its own (Redis store and adapter). Either
 * way, messages for one peer on another worker of this machine take a direct link.
 */
export async function runWorker(config: Config, index: number, logger: Logger): Promise<void> {
  const machine = `${hostname()}-${process.ppid}`;
  const nodeId = `${machine}.w${index}-${process.pid}-${randomBytes(3).toString("hex")}`;
  const channel = parentChannel<WorkerToPrimary, PrimaryToWorker>(isPrimaryToWorker);
  let machineConnections = 0;
  channel.onMessage((message) => {
    if (message.ps === "machine") machineConnections = message.connections;
    else if (message.ps === "reap") void broker?.reapNode(message.nodeId);
  });

  const broker = await connectBrokerOrExit(config, nodeId, instanceName(config, `w${index}`), logger);
  let backend: Pick<ServerDeps, "store" | "adapter" | "remoteConnections" | "backends" | "registrationLimiter">;
  if (broker === undefined) {
    const store = new ReplicatedStore(channel, {
      callTimeoutMs: STORE_CALL_TIMEOUT_MS,
      // Departures arrive only after start(), when `server` exists.
      onDepartures: (departures) => server.announceDepartures(departures, false),
    });
    await store.start();
    backend = { store, adapter: createAdapter(), remoteConnections: () => store.peersElsewhere(nodeId) };
  } else {
    backend = {
      store: broker.store,
      adapter: broker.adapter,
      backends: broker.backends,
      registrationLimiter: broker.registrationLimiter,
      // The primary's count of the whole machine, at most a second old.
      remoteConnections: () => Math.max(0, machineConnections - server.connectionCount()),
    };
  }
  const directLinks = new DirectLinks(nodeId, machine, logger);
  await directLinks.listen();
  const server: PeerServer = createServer(config, {
    logger,
    nodeId,
    ...backend,
    generateSessionId: () => `w${index}-${randomBytes(15).toString("base64url")}`,
    listen: false,
    attach: (io) => setupWorker(io),
    directLinks,
  });
  await server.start();
  await broker?.attach(server);
  channel.send({ ps: "ready", nodeId });
  setInterval(() => channel.send({ ps: "load", connections: server.connectionCount() }), LOAD_REPORT_MS).unref();

  process.on("SIGTERM", () => shutDown(server, broker, config, logger));
  process.on("SIGINT", () => undefined); // the primary decides; Ctrl-C reaches it too
}
