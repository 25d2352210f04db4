import { destination, pino, type Logger } from "pino";
import type { Config } from "../config/load.ts";

export type { Logger } from "pino";

/** Log lines waiting for stdout to take them, at most; past it, new lines are dropped. */
const MAX_BACKLOG_BYTES = 8 * 1024 * 1024;

/**
 * JSON lines on stdout; the `listening` line carries the bound port for tools and tests.
 *
 * Logging never waits for stdout. Each line is written at once; one that stdout does not take (a
 * pipe that is full: EAGAIN, or whose reader is gone: EPIPE) waits in memory, goes out with the
 * next line written, and is lost at exit. pino's default destination instead flushes what is
 * left at exit synchronously, retrying every 100 ms for as long as stdout does not take it, which
 * with a full pipe or a gone reader is forever: a process stuck there ignores every signal but
 * SIGKILL (cluster workers that had logged a failure for each of thousands of peers at shutdown
 * stayed so for good). And a synchronous destination that retries sleeps 100 ms each time the
 * pipe is full, stalling the process through a burst of lines.
 */
export function createLogger(config: Pick<Config, "logLevel">): Logger {
  const stdout = destination({ dest: 1, sync: true, maxLength: MAX_BACKLOG_BYTES, retryEAGAIN: () => false });
  // EAGAIN and EPIPE: the line waits for the next write (see above); nothing to do here.
  stdout.on("error", () => undefined);
  return pino({ level: config.logLevel, base: { pid: process.pid } }, stdout);
}

/**
 * The `listening` line (with the bound port) is printed whatever the log level: tools and tests
 * that start the server on port 0 read the port from it.
 */
export function logListening(logger: Logger, fields: Record<string, unknown>): void {
  const level = logger.levelVal > 30 && logger.level !== "silent" ? logger.child({}, { level: "info" }) : logger;
  level.info(fields, "listening");
}
