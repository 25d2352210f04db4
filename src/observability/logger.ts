import { pino, type Logger } from "pino";
import type { Config } from "../config/load.ts";

export type { Logger } from "pino";

/** JSON lines on stdout; the `listening` line carries the bound port for tools and tests. */
export function createLogger(config: Pick<Config, "logLevel">): Logger {
  return pino({ level: config.logLevel, base: { pid: process.pid } });
}

/**
 * The `listening` line (with the bound port) is printed whatever the log level: tools and tests
 * that start the server on port 0 read the port from it.
 */
export function logListening(logger: Logger, fields: Record<string, unknown>): void {
  const level = logger.levelVal > 30 && logger.level !== "silent" ? logger.child({}, { level: "info" }) : logger;
  level.info(fields, "listening");
}
