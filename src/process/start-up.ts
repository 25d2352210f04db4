import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { ConfigError, configPathFromArgs, loadConfig, type Config } from "../config/load.ts";
import { LibraryInternalsError } from "../internals/library-internals.ts";
import { logListening, withoutCredentials, type Logger } from "../observability/logger.ts";
import { StartError, type PeerServer } from "../server.ts";
import { accessTokenConfigProblems } from "../trust/access-tokens.ts";
import { trustedProxiesProblem } from "../trust/client-address.ts";

/**
 * Reads config from the command line and environment, or exits (code 2) with one clear message;
 * the options the trust checks parse (keys, URLs, address ranges) are checked by the parsers that
 * will use them.
 */
export function loadConfigOrExit(): Config {
  try {
    const config = loadConfig({ path: configPathFromArgs(process.argv.slice(2)) });
    const proxies = trustedProxiesProblem(config.trustedProxies);
    const problems = [...(proxies === undefined ? [] : [`trusted_proxies: ${proxies}`]), ...accessTokenConfigProblems(config)];
    if (problems.length > 0) throw new ConfigError(problems);
    return config;
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      process.exit(2);
    }
    throw error;
  }
}

/**
 * Runs a start-up step, or exits (code 1) with one clear message when the installed libraries are
 * not the ones src/internals/library-internals.ts was verified against (createServer checks that first).
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

/** Starts a server, or exits (code 1) naming what could not be reached: the backends or the address. */
export async function startOrExit(server: PeerServer, config: Config, logger: Logger): Promise<void> {
  let address;
  try {
    address = await server.start();
  } catch (error) {
    if (!(error instanceof StartError)) throw error;
    if (error.step === "listen") console.error(`cannot listen on ${config.host}:${config.port}: ${error.message}`);
    else if (config.brokerType === "redis") console.error(`cannot reach Redis at ${withoutCredentials(config.redisAddr)}: ${error.message}`);
    else console.error(`cannot start the backends: ${error.message}`);
    process.exit(1);
  }
  if (address !== undefined) logListening(logger, { host: address.address, port: address.port, tls: config.tlsCert !== "" });
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
