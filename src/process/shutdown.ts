import type { Config } from "../config/load.ts";
import type { Logger } from "../observability/logger.ts";
import type { PeerServer } from "../server.ts";

/**
 * Stops `server` gracefully on the first of `signals` (peers told, unregistered, backends closed),
 * then exits 0; exits 1 if that takes longer than write_timeout. A signal may come twice (from the
 * primary and from the terminal's process group): only the first one counts.
 */
export function stopOnSignals(server: PeerServer, config: Config, logger: Logger, signals: readonly NodeJS.Signals[]): void {
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    logger.info("shutting down");
    const force = setTimeout(() => process.exit(1), config.writeTimeoutMs);
    force.unref();
    void server.close().then(() => process.exit(0));
  };
  for (const signal of signals) process.on(signal, stop);
}
