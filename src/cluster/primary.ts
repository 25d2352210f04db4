import cluster, { type Worker } from "node:cluster";
import { rmSync } from "node:fs";
import { createServer as createNetServer, Socket, type AddressInfo, type Server as NetServer } from "node:net";
import { performance } from "node:perf_hooks";
import { setupPrimary as setupClusterAdapterPrimary } from "@socket.io/cluster-adapter";
import type { Config } from "../config/load.ts";
import { workerEnv } from "../config/role.ts";
import { assertLibraryInternals, clusterAdapterClose, isClusterAdapterMessage, stopReadingAtHandle } from "../internals/library-internals.ts";
import { LimitsHost } from "../backends/cluster/limits-host.ts";
import { addressRegistrations, createMemoryRegistrationLimits } from "../backends/registration-limiter.ts";
import { startBurstReclaim } from "../process/burst-reclaim.ts";
import { Shutdown } from "../process/shutdown.ts";
import { orExitOnLibraryMismatch } from "../process/start-up.ts";
import { logListening, type Logger } from "../observability/logger.ts";
import { MachineScrape } from "../observability/prometheus-cluster.ts";
import { metricsRoute } from "../admin/metrics-route.ts";
import { adminApiRoutes } from "../admin/admin-api-route.ts";
import { adminListener, listenAdminOrExit } from "../process/observability.ts";
import { exhaustive, handOffBytes, handOffMessage, workerToPrimaryGuard, type AdmittedMessage, type ForwardMessage, type PrimaryToWorker, type WorkerToPrimary } from "../protocol/cluster-messages.ts";
import { Bundler, type Sender } from "../backends/cluster/channel.ts";
import { StoreHost } from "../backends/cluster/store-host.ts";
import { directLinkPath } from "../delivery/direct-links.ts";
import { requestReading, StickyRouter, type RouteTarget } from "./sticky-router.ts";
import { AdminForwarding } from "./admin-forwarding.ts";
import { MachineQuota } from "./machine-quota.ts";
import { placeConnection } from "./placement.ts";

interface WorkerSlot {
  index: number;
  worker: Worker;
  link: Sender<PrimaryToWorker>;
  nodeId: string | undefined;
  ready: boolean;
  /** Connections the worker reported, plus long-lived hand-offs it had not yet received then. */
  load: number;
  /** Long-lived connections handed to the worker (or admitted for it) so far. */
  longLivedSent: number;
  /** The port its own acceptor listens on (plain HTTP). */
  port: number | undefined;
}

/** Restarts of one slot closer together than this are delayed, so a crash loop cannot spin. */
const RESTART_BACKOFF_MS = 1_000;
/**
 * How long a worker may take to answer an admin API request: above the worker's own bounds (a
 * store call 5 s, a question to every process 1 s), so that it is the worker that says what failed.
 */
const ADMIN_TIMEOUT_MS = 10_000;

/**
 * The cluster primary: forks the workers, owns the listening socket and routes connections to
 * workers (StickyRouter), relays the cluster adapter's messages, keeps the authoritative state
 * (StoreHost), replaces dead workers after removing their peers everywhere, and stops them all
 * gracefully on SIGTERM or SIGINT.
 *
 * Stopping: the primary stops listening, tells every worker to stop (an IPC message, not a signal:
 * a worker may have had SIGTERM from its process group already) and waits for all of them at most
 * shutdown_timeout; then it SIGKILLs those left and exits 1. It exits 0 when every worker stopped
 * in time by itself, 1 when one had to be killed or exited cut. A second SIGTERM or SIGINT during
 * the shutdown SIGKILLs the workers and exits 1 at once. Should the primary die anyway, each worker
 * exits on its own when its channel to the primary closes (see runWorker).
 */
export async function runPrimary(config: Config, workerCount: number, logger: Logger): Promise<void> {
  // Before forking: every worker would fail the same check and be restarted forever.
  orExitOnLibraryMismatch(() => assertLibraryInternals());
  const host = new StoreHost();
  /** Registrations per key and per address, and the message budgets of every worker's connections (see ClusterLimits). */
  const limits = new LimitsHost(undefined, createMemoryRegistrationLimits(addressRegistrations(config)));
  /** Connections per client address on the machine, counted as the router hands them over. */
  const quota = new MachineQuota(config, () => performance.now());
  const slots = new Map<number, WorkerSlot>();
  /** Every message to the workers but the hand-offs of sockets, those of one turn in one write per worker. */
  const toWorkers = new Bundler<PrimaryToWorker>();
  const lastStart = new Map<number, number>();
  let listener: NetServer | undefined;
  /** Set before any worker is forked: prom-client's side of the scrape listens to every worker's messages. */
  const machineScrape = config.metricsEnabled ? new MachineScrape() : undefined;
  // A worker that is starting (a replacement) may not answer yet: prom-client would wait 5 s for it
  // and fail the scrape anyway, so such a scrape fails at once.
  const everyWorkerReady = (): boolean => slots.size === workerCount && [...slots.values()].every((slot) => slot.ready);
  /** The admin API's requests, each answered by one ready worker for the whole deployment. */
  const forwarding = new AdminForwarding({
    workers: () => [...slots.values()].filter((slot) => slot.ready).map((slot) => slot.link),
    timeoutMs: ADMIN_TIMEOUT_MS,
  });
  /** The machine's admin listener (metrics_enabled); it listens once the main listener does. */
  const admin =
    machineScrape === undefined
      ? undefined
      : adminListener(
          config,
          [
            metricsRoute(() => (everyWorkerReady() ? machineScrape.scrape() : Promise.reject(new Error("a worker is starting; try again")))),
            ...adminApiRoutes((request) => forwarding.forward(request)),
          ],
          logger,
        );
  /** Resolves the shutdown's wait once no worker is left. */
  let allExited: (() => void) | undefined;
  /** A worker exited with a failure during the shutdown (it was cut, or crashed). */
  let workerCut = false;
  const shutdown = new Shutdown({
    deadlineMs: config.shutdownTimeoutMs,
    close: async () => {
      listener?.close();
      void admin?.close();
      forwarding.close();
      const gone = new Promise<void>((resolve) => (allExited = resolve));
      for (const slot of slots.values()) slot.link.send({ ps: "stop" });
      if (slots.size > 0) await gone;
      return workerCut ? 1 : 0;
    },
    abort: () => {
      for (const slot of slots.values()) slot.worker.process.kill("SIGKILL");
    },
    exit: (code) => process.exit(code),
    logger,
  });
  for (const signal of ["SIGTERM", "SIGINT"] as const) process.on(signal, () => shutdown.signal(signal));

  const tls = config.tlsCert !== "";
  // Over plain HTTP the workers accept connections themselves, on one listening socket the cluster
  // module shares with each of them (see WorkerAcceptor); set before the first setupPrimary, which
  // freezes it.
  if (!tls) cluster.schedulingPolicy = cluster.SCHED_NONE;
  setupClusterAdapterPrimary();
  // JSON costs half of what the v8 serializer ("advanced") does per message, sending and reading
  // (a bundle of a store call and a limits call: 8 against 17 µs to send, 6 against 11 µs to read);
  // what JSON cannot carry travels otherwise: a hand-off's bytes as base64, a mutation's optional
  // arguments left out rather than undefined (see cluster-messages.ts).
  cluster.setupPrimary({ serialization: "json" });

  /** Tells every worker which workers are ready: their direct links fan room emits out to those. */
  const announceWorkers = (): void => {
    const nodeIds: string[] = [];
    for (const slot of slots.values()) if (slot.ready && slot.nodeId !== undefined) nodeIds.push(slot.nodeId);
    for (const slot of slots.values()) slot.link.send({ ps: "workers", nodeIds });
  };

  const fork = (index: number): void => {
    if (shutdown.stopping) return; // a replacement scheduled before the shutdown began
    lastStart.set(index, Date.now());
    const worker = cluster.fork(workerEnv(index, workerCount));
    const slot: WorkerSlot = {
      index,
      worker,
      nodeId: undefined,
      ready: false,
      load: 0,
      longLivedSent: 0,
      port: undefined,
      link: toWorkers.to({ send: (message) => sendQuietly(worker, message, logger) }),
    };
    slots.set(index, slot);
    logger.info({ worker: index, workerPid: worker.process.pid }, "worker started");
    /** The worker's cluster adapters (uid -> namespace), to announce their end if the worker dies. */
    const adapters = new Map<string, string>();
    const fromWorker = workerToPrimaryGuard((ps, problem) => logger.warn({ worker: index, ps, problem }, "dropped a malformed message from a worker"));
    const dispatch = (message: WorkerToPrimary, handle: unknown): void => {
      switch (message.ps) {
        case "hello":
        case "call":
        case "batch":
          host.receive(slot.link, message);
          break;
        case "limits-register":
        case "limits-save":
        case "limits-take":
        case "limits-batch":
          limits.receive(slot.link, message);
          break;
        case "admit":
          slot.link.send(admit(slot, message.id, message.address ?? undefined));
          break;
        case "forward":
          forward(message, handle);
          break;
        case "cannot-listen":
          if (shutdown.stopping) break;
          console.error(`cannot listen on ${config.host}:${config.port}: ${message.message}`);
          for (const other of slots.values()) other.worker.process.kill("SIGKILL");
          process.exit(1);
          break;
        case "ready":
          slot.port = message.port;
          slot.nodeId = message.nodeId;
          slot.ready = true;
          // `workerPid`: every line has the primary's own `pid` already.
          logger.info({ worker: index, workerPid: worker.process.pid, nodeId: message.nodeId }, "worker ready");
          announceWorkers();
          break;
        case "load":
          slot.load = message.connections + (slot.longLivedSent - message.handOffs);
          break;
        case "admin-response":
          forwarding.receive(message);
          break;
        case "quota-release":
          quota.released(worker.id, message.addresses);
          break;
        default:
          exhaustive(message);
      }
    };
    worker.on("message", (message: unknown, handle: unknown) => {
      if (isClusterAdapterMessage(message)) adapters.set(message.uid, message.nsp);
      if (!fromWorker(message)) return;
      if (message.ps !== "bundle") dispatch(message, handle);
      else for (const item of message.messages) dispatch(item, undefined);
    });
    // An IPC write to a worker that is exiting fails with EPIPE; its exit is handled below.
    worker.on("error", (error) => logger.debug({ err: error, worker: index }, "worker channel error"));
    worker.on("exit", (code, signal) => {
      host.detach(slot.link);
      quota.workerGone(worker.id);
      if (slots.get(index) === slot) slots.delete(index);
      if (shutdown.stopping) {
        if (code !== 0) workerCut = true;
        if (slots.size === 0) allExited?.();
      }
      announceWorkers();
      // A killed worker's adapter never says goodbye: the others would count it for their heartbeat
      // timeout (10 s) and every serverSideEmitWithAck (/stats, /health) would wait for it in vain.
      for (const [uid, nsp] of adapters) {
        const close = clusterAdapterClose({ uid, nsp });
        for (const other of slots.values()) sendQuietly(other.worker, close, logger);
      }
      if (slot.nodeId !== undefined) {
        rmSync(directLinkPath(slot.nodeId), { force: true }); // a killed worker leaves its socket file
        if (config.brokerType === "redis") {
          // Its peers live in Redis: one surviving worker removes them now and tells every node.
          const survivor = [...slots.values()].find((other) => other.ready);
          survivor?.link.send({ ps: "reap", nodeId: slot.nodeId });
        }
        void host.removeNode(slot.nodeId).then((departures) => {
          const fields = { worker: index, workerPid: worker.process.pid, code, signal, peersRemoved: departures.length };
          if (shutdown.stopping) logger.info(fields, "worker stopped");
          else logger.warn(fields, "worker exited");
        });
      }
      if (shutdown.stopping) return;
      const sinceStart = Date.now() - (lastStart.get(index) ?? 0);
      setTimeout(() => fork(index), sinceStart < RESTART_BACKOFF_MS ? RESTART_BACKOFF_MS : 0);
    });
  };
  for (let index = 0; index < workerCount; index++) fork(index);
  // The machine's state and limits grow with every peer here too (see process/burst-reclaim.ts).
  startBurstReclaim(logger);

  const machineLoad = (): number => {
    let load = 0;
    for (const slot of slots.values()) load += slot.load;
    return load;
  };
  /**
   * Places a new long-lived connection a worker accepted: counted against its client address (or
   * refused, 429), and given to a worker (placeConnection): the one that accepted it or, when that
   * one holds more than its share, the least loaded, which the accepting worker forwards it to.
   */
  const admit = (landed: WorkerSlot, id: number, address: string | undefined): AdmittedMessage => {
    const verdict = quota.admit(address);
    if ("refuse" in verdict) return { ps: "admitted", id, refuse: verdict.refuse };
    const { to, machineLoad } = placeConnection(landed, slots.values());
    // Taken before this connection counts, over every worker's connections (see limits/admission.ts).
    const full = machineLoad >= config.maxPeers;
    to.load++;
    to.longLivedSent++;
    if (verdict.address === undefined) return { ps: "admitted", id, to: to.index, full };
    quota.handedOff(to.worker.id, verdict.address);
    return { ps: "admitted", id, to: to.index, full, quota: verdict.address };
  };
  /**
   * Moves a connection a worker accepted to the worker it belongs to (a session's owner, or where
   * `admit` placed it). Without a socket it was lost on the way: what `admit` counted is released.
   */
  const forward = (message: ForwardMessage, handle: unknown): void => {
    const slot = slots.get(message.to);
    const socket = handle instanceof Socket ? handle : undefined;
    if (socket === undefined || slot === undefined || !slot.ready) {
      socket?.destroy();
      if (message.longLived && slot !== undefined) {
        slot.load--;
        slot.longLivedSent--;
      }
      // A worker gone released all it held already (workerGone).
      if (message.quota !== undefined && slot !== undefined) quota.released(slot.worker.id, [message.quota]);
      return;
    }
    // Node starts reading a socket it receives: stopped at once, or the primary would take (and,
    // handing it on, lose) what the client sends while the next worker acknowledges it.
    socket.pause();
    const read: Buffer[] = [handOffBytes(message)];
    for (let chunk = socket.read() as Buffer | null; chunk !== null; chunk = socket.read() as Buffer | null) read.push(chunk);
    stopReadingAtHandle(socket);
    const data = read.length === 1 ? (read[0] as Buffer) : Buffer.concat(read);
    const handOff = handOffMessage(data, message.longLived, message.full, message.quota);
    toWorkers.flush();
    slot.worker.send(handOff, socket, { keepOpen: false }, (error) => {
      if (!error) return;
      socket.destroy();
      if (message.quota !== undefined) quota.released(slot.worker.id, [message.quota]);
    });
  };
  const readyTargets = (): ReadonlyMap<number, RouteTarget> => {
    const targets = new Map<number, RouteTarget>();
    for (const slot of slots.values()) {
      if (!slot.ready) continue;
      targets.set(slot.index, {
        index: slot.index,
        load: slot.load,
        handOff: (socket: Socket, data: Buffer, longLived: boolean, counted?: string) => {
          // Taken before this connection counts, over every worker's connections (see limits/admission.ts).
          const full = longLived && machineLoad() >= config.maxPeers;
          if (longLived) {
            slot.load++;
            slot.longLivedSent++;
          }
          const handOff = handOffMessage(data, longLived, full, counted);
          if (counted !== undefined) quota.handedOff(slot.worker.id, counted);
          toWorkers.flush();
          slot.worker.send(handOff, socket, { keepOpen: false }, (error) => {
            if (!error) return;
            socket.destroy();
            if (counted !== undefined) quota.released(slot.worker.id, [counted]);
          });
        },
      });
    }
    return targets;
  };

  await waitFor(() => shutdown.stopping || [...slots.values()].filter((slot) => slot.ready).length === workerCount, 30_000);
  if (shutdown.stopping) return;

  if (tls) {
    // The primary cannot read TLS requests: it routes each connection unread by client address.
    const router = new StickyRouter({
      tls: true,
      ...requestReading(config),
      slots: workerCount,
      targets: readyTargets,
      logger,
    });
    const server = (listener = createNetServer({ pauseOnConnect: true }, (socket) => router.accept(socket)));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(config.port, config.host, () => resolve());
    }).catch((error: unknown) => {
      console.error(`cannot listen on ${config.host}:${config.port}: ${(error as Error).message}`);
      for (const slot of slots.values()) slot.worker.process.kill("SIGKILL");
      process.exit(1);
    });
    // A shutdown that began while the listener was starting closed it too early to take effect.
    if (shutdown.stopping) {
      server.close();
      return;
    }
    const address = server.address() as AddressInfo;
    logListening(logger, { host: address.address, port: address.port, workers: workerCount, tls });
  } else {
    // Every worker listens already (it reports ready once it does), all on one port.
    const port = [...slots.values()].find((slot) => slot.port !== undefined)?.port ?? config.port;
    logListening(logger, { host: config.host, port, workers: workerCount, tls });
  }
  if (admin === undefined) return;
  await listenAdminOrExit(admin, config, logger, () => {
    for (const slot of slots.values()) slot.worker.process.kill("SIGKILL");
  });
  // A shutdown that began while the admin listener was starting closed nothing yet.
  if (shutdown.stopping) void admin.close();
}

/**
 * Sends to a worker that may be exiting: a closed channel (EPIPE) would otherwise be an unhandled
 * 'error' on the Worker and take the primary down; the worker's exit is handled on its own.
 */
function sendQuietly(worker: Worker, message: unknown, logger: Logger): void {
  if (!worker.isConnected()) return;
  try {
    worker.send(message as object, () => undefined);
  } catch (error) {
    // Serialization failed (client data is bounded at the edge, so this is a bug): lose the message, not the machine.
    logger.error({ err: error, worker: worker.id }, "could not send to a worker");
  }
}

function waitFor(condition: () => boolean, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + timeoutMs;
    const check = (): void => {
      if (condition()) resolve();
      else if (Date.now() > deadline) reject(new Error("timed out waiting for workers"));
      else setTimeout(check, 20);
    };
    check();
  });
}
