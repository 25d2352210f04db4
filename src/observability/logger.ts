import { destination, pino, type Logger } from "pino";
import type { Config } from "../config/load.ts";

export type { Logger } from "pino";

/** Log lines waiting for stdout to take them, at most; past it, new lines are dropped. */
const MAX_BACKLOG_BYTES = 8 * 1024 * 1024;

/** Secret-bearing keys whose values a line never shows, at its top level or one object down (the options' file and field names alike). */
const SECRET_KEYS = [
  "token",
  "password",
  "secret",
  "authorization",
  "redis_password",
  "redisPassword",
  "turn_secret",
  "turnSecret",
  "admin_token",
  "adminToken",
  "pigeon_auth_token",
  "pigeonAuthToken",
  "randomchat_auth_token",
  "randomchatAuthToken",
];
/** pino `redact` paths: each secret key at the top level and one level down, and request headers. */
export const REDACTED_PATHS: readonly string[] = [
  ...SECRET_KEYS,
  ...SECRET_KEYS.map((key) => `*.${key}`),
  "headers.authorization",
  "headers.cookie",
  "*.headers.authorization",
  "*.headers.cookie",
];

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
 *
 * Every line has `pid` (the base): no line may pass a `pid` of its own (a worker's is `workerPid`),
 * nor a key its logger's child bindings hold (`role`, `worker`): JSON with a key twice is kept
 * differently by each log tool. Values of secret-bearing keys are written as `[redacted]` (REDACTED_PATHS).
 */
export function createLogger(config: Pick<Config, "logLevel">): Logger {
  const stdout = destination({ dest: 1, sync: true, maxLength: MAX_BACKLOG_BYTES, retryEAGAIN: () => false });
  // EAGAIN and EPIPE: the line waits for the next write (see above); nothing to do here.
  stdout.on("error", () => undefined);
  return pino({ level: config.logLevel, base: { pid: process.pid }, redact: { paths: [...REDACTED_PATHS], censor: "[redacted]" } }, stdout);
}

/**
 * The `listening` line (with the bound port) is printed whatever the log level: tools and tests
 * that start the server on port 0 read the port from it.
 */
export function logListening(logger: Logger, fields: Record<string, unknown>): void {
  const level = logger.levelVal > 30 && logger.level !== "silent" ? logger.child({}, { level: "info" }) : logger;
  level.info(fields, "listening");
}

/** `address` (host:port, or a URL) without the user name and password a URL may carry: fit for a message. */
export function withoutCredentials(address: string): string {
  return address.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^@/]*@/i, "$1");
}
