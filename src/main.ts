import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { connectRedisBroker, type RedisBroker } from "./broker/redis-broker.ts";
import { ConfigError, configPathFromArgs, loadConfig, type Config } from "./config/load.ts";
import { LibraryInternalsError } from "./internals/library-internals.ts";
import { createLogger, logListening, type Logger } from "./observability/logger.ts";
import { createServer, type PeerServer } from "./server.ts";

/** Reads config from the command line and environment, or exits with one clear message. */
export function loadConfigOrExit(): Config {
  try {
    return loadConfig({ path: configPathFromArgs(process.argv.slice(2)) });
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      process.exit(2);
    }
    throw error;
  }
}

/**
 * Runs a start-up step, or exits with one clear message when the installed libraries are not the
 * ones src/internals/library-internals.ts was verified against (createServer checks that first).
 */
export function orExitOnLibraryMismatch<T>(step: () => T): T {
  try {
    return step();
  } catch (error) {
    if (error instanceof LibraryInternalsError) {
      console.error(error.message);
      process.exit(1);
    }
    throw error;
  }
}

/** A node id unique across hosts, processes and restarts. */
export const newNodeId = (): string => `${hostname()}-${process.pid}-${randomBytes(3).toString("hex")}`;

/**
 * What names this process across restarts on this host (see NodeLiveness `instance`): its listen
 * address and its slot ("single", or a worker's "w<index>"). Two nodes on one host differ by
 * address, so a node that starts never mistakes a live neighbour for its earlier self. With port 0
 * every start listens elsewhere: there is no earlier self to find (undefined).
 */
export const instanceName = (config: Pick<Config, "host" | "port">, slot: string): string | undefined =>
  config.port === 0 ? undefined : `${config.host}:${config.port}/${slot}`;

/** Connects the Redis broker when configured, or exits with a clear message. */
export async function connectBrokerOrExit(config: Config, nodeId: string, instance: string | undefined, logger: Logger): Promise<RedisBroker | undefined> {
  if (config.brokerType !== "redis") return undefined;
  try {
    return await connectRedisBroker(config, nodeId, instance, logger);
  } catch (error) {
    console.error(`cannot reach Redis at ${config.redisAddr}: ${(error as Error).message}`);
    process.exit(1);
  }
}

/** Runs one server process until SIGTERM or SIGINT, then shuts down gracefully. */
export async function runServer(config: Config): Promise<void> {
  const logger = createLogger(config);
  const nodeId = newNodeId();
  const broker = await connectBrokerOrExit(config, nodeId, instanceName(config, "single"), logger);
  const server = orExitOnLibraryMismatch(() =>
    createServer(config, {
      logger,
      nodeId,
      ...(broker === undefined
        ? {}
        : { store: broker.store, adapter: broker.adapter, backends: broker.backends, registrationLimiter: broker.registrationLimiter, budgetStore: broker.budgetStore }),
    }),
  );
  let address;
  try {
    address = await server.start();
  } catch (error) {
    console.error(`cannot listen on ${config.host}:${config.port}: ${(error as Error).message}`);
    process.exit(1);
  }
  await broker?.attach(server);
  logListening(logger, { host: address?.address, port: address?.port, tls: config.tlsCert !== "" });
  process.on("SIGTERM", () => shutDown(server, broker, config, logger));
  process.on("SIGINT", () => shutDown(server, broker, config, logger));
}

let stopping = false;

/**
 * Graceful stop: close the server (peers told, unregistered), then leave the broker, then exit 0;
 * exit 1 if that takes longer than write_timeout.
 */
export function shutDown(server: PeerServer, broker: RedisBroker | undefined, config: Config, logger: Logger): void {
  // A signal may come twice (the primary and the terminal's process group): the first one counts.
  if (stopping) return;
  stopping = true;
  logger.info("shutting down");
  const force = setTimeout(() => process.exit(1), config.writeTimeoutMs);
  force.unref();
  void server
    .close()
    .then(() => broker?.close())
    .then(() => process.exit(0));
}
