import type { Config } from "../config/load.ts";
import { AdminListener } from "../admin/admin-listener.ts";
import type { AdminRoute } from "../admin/router.ts";
import type { Logger } from "../observability/logger.ts";
import { PrometheusMetrics } from "../observability/prometheus-metrics.ts";
import { ErrorCode } from "../protocol/errors.ts";
import { REQUEST_VALIDATORS } from "../protocol/requests.ts";
import type { ServerMessageType } from "../protocol/server-messages.ts";

/** Every server message type, each once: a type missing here (or one that does not exist) does not compile. */
const SERVER_MESSAGE_TYPES: { readonly [T in ServerMessageType]: true } = {
  challenge: true,
  registered: true,
  peer_list: true,
  peer_joined: true,
  peer_left: true,
  signal: true,
  relay: true,
  broadcast: true,
  match: true,
  matched: true,
  room_created: true,
  room_info: true,
  kick: true,
  pong: true,
  error: true,
  ok: true,
};

/**
 * The Prometheus recorder of a server process (single process or cluster worker), counting by the
 * protocol's own request types, server message types and error codes; undefined when
 * `metrics_enabled` is false (the server then records nothing at all).
 *
 * @param processLabels labels of the default process metrics (a worker's `{worker: "<index>"}`)
 */
export function createProcessMetrics(config: Config, processLabels?: Readonly<Record<string, string>>): PrometheusMetrics | undefined {
  if (!config.metricsEnabled) return undefined;
  return new PrometheusMetrics({
    requestTypes: [...REQUEST_VALIDATORS.keys()],
    messageTypes: Object.keys(SERVER_MESSAGE_TYPES),
    errorCodes: Object.values(ErrorCode),
    redis: config.brokerType === "redis",
    ...(processLabels === undefined ? {} : { processLabels }),
  });
}

/** The machine's admin listener on metrics_host:metrics_port, serving `routes` (admin_token applies); not listening yet. */
export function adminListener(config: Config, routes: readonly AdminRoute[], logger: Logger): AdminListener {
  return new AdminListener({ host: config.metricsHost, port: config.metricsPort, token: config.adminToken, routes, logger });
}

/**
 * Starts the admin listener and logs `admin listening` with the bound port whatever the log level
 * (metrics_port 0 picks one). When the address cannot be had it prints one line naming
 * metrics_port, calls `beforeExit` (the primary kills its workers) and exits 1, as a main port that
 * is taken does.
 */
export async function listenAdminOrExit(admin: AdminListener, config: Config, logger: Logger, beforeExit?: () => void): Promise<void> {
  try {
    const address = await admin.listen();
    const info = logger.levelVal > 30 && logger.level !== "silent" ? logger.child({}, { level: "info" }) : logger;
    info.info({ host: address.address, port: address.port, auth: config.adminToken !== "" }, "admin listening");
  } catch (error) {
    console.error(`cannot listen on ${config.metricsHost}:${config.metricsPort} (metrics_port): ${(error as Error).message}`);
    beforeExit?.();
    process.exit(1);
  }
}
