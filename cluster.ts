import cluster from "node:cluster";
import { processRole } from "./src/config/role.ts";
import { inertOptions } from "./src/config/schema.ts";
import { runPrimary } from "./src/cluster/primary.ts";
import { runWorker } from "./src/cluster/worker.ts";
import { runSingle } from "./src/process/single.ts";
import { loadConfigOrExit } from "./src/process/start-up.ts";
import { createLogger } from "./src/observability/logger.ts";

/**
 * Entry point (`npm start`). With `workers`/PEER_WORKERS above 1 (default: one per CPU) this
 * process becomes the cluster primary and forks the workers; with 1 it is the server itself.
 */
const config = loadConfigOrExit();
const role = processRole(config, cluster.isWorker);
// Every adapter, IPC and Redis call handles its own failure; one that slips through is a bug to
// log, not a reason to drop every connection of this process.
const logger = createLogger(config);
process.on("unhandledRejection", (reason) => logger.error({ err: reason }, "unhandled promise rejection"));
if (role.kind !== "worker") for (const note of inertOptions(config)) logger.warn(note);
if (role.kind === "single") {
  await runSingle(config, logger);
} else if (role.kind === "primary") {
  await runPrimary(config, role.workers, logger.child({ role: "primary" }));
} else {
  await runWorker(config, role.index, role.workers, logger.child({ worker: role.index }));
}
