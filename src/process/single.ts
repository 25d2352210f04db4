import { connectRedisBackends } from "../backends/redis/redis-backends.ts";
import type { Config } from "../config/load.ts";
import type { Logger } from "../observability/logger.ts";
import { createServer } from "../server.ts";
import { Shutdown } from "./shutdown.ts";
import { instanceName, newNodeId, orExitOnLibraryMismatch, startOrExit } from "./start-up.ts";

/**
 * One server process on its own (`workers` 1): on the embedded memory backends, or a node of its
 * own on Redis. Runs until SIGTERM or SIGINT, then shuts down gracefully within shutdown_timeout
 * (exit 0; 1 when the deadline cut it). A second SIGTERM or SIGINT during the shutdown ends it at once (exit 1).
 */
export async function runSingle(config: Config, logger: Logger): Promise<void> {
  const nodeId = newNodeId();
  const server = orExitOnLibraryMismatch(() =>
    createServer(config, {
      logger,
      nodeId,
      ...(config.brokerType === "redis" ? { connectBackends: () => connectRedisBackends(config, nodeId, instanceName(config, "single"), logger) } : {}),
    }),
  );
  await startOrExit(server, config, logger);
  const shutdown = new Shutdown({
    deadlineMs: config.shutdownTimeoutMs,
    close: () => server.close(),
    exit: (code) => process.exit(code),
    logger,
  });
  for (const signal of ["SIGTERM", "SIGINT"] as const) process.on(signal, () => shutdown.signal(signal));
}
