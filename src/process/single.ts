import { connectRedisBackends } from "../backends/redis/redis-backends.ts";
import type { Config } from "../config/load.ts";
import type { Logger } from "../observability/logger.ts";
import { createServer } from "../server.ts";
import { metricsRoute } from "../admin/metrics-route.ts";
import { adminApiRoutes } from "../admin/admin-api-route.ts";
import { adminListener, createProcessMetrics, listenAdminOrExit } from "./observability.ts";
import { Shutdown } from "./shutdown.ts";
import { instanceName, newNodeId, orExitOnLibraryMismatch, startOrExit } from "./start-up.ts";

/**
 * One server process on its own (`workers` 1): on the embedded memory backends, or a node of its
 * own on Redis. Runs until SIGTERM or SIGINT, then shuts down gracefully within shutdown_timeout
 * (exit 0; 1 when the deadline cut it). A second SIGTERM or SIGINT during the shutdown ends it at once (exit 1).
 * With metrics_enabled it is its machine's admin listener too, serving its own metrics and the
 * admin API; the listener closes as the shutdown begins.
 */
export async function runSingle(config: Config, logger: Logger): Promise<void> {
  const nodeId = newNodeId();
  const metrics = createProcessMetrics(config);
  const server = orExitOnLibraryMismatch(() =>
    createServer(config, {
      logger,
      nodeId,
      ...(config.brokerType === "redis" ? { connectBackends: () => connectRedisBackends(config, nodeId, instanceName(config, "single"), logger) } : {}),
      ...(metrics === undefined ? {} : { metrics }),
    }),
  );
  await startOrExit(server, config, logger);
  const admin =
    metrics === undefined
      ? undefined
      : adminListener(config, [metricsRoute(() => metrics.scrape()), ...adminApiRoutes((request) => server.admin(request))], logger);
  if (admin !== undefined) await listenAdminOrExit(admin, config, logger);
  const shutdown = new Shutdown({
    deadlineMs: config.shutdownTimeoutMs,
    close: async () => {
      await Promise.all([admin?.close(), server.close()]);
    },
    exit: (code) => process.exit(code),
    logger,
  });
  for (const signal of ["SIGTERM", "SIGINT"] as const) process.on(signal, () => shutdown.signal(signal));
}
