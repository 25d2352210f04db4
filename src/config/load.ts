import { readFileSync } from "node:fs";
import { OPTIONS, coerceOption, type Config } from "./schema.ts";

export type { Config } from "./schema.ts";

/** Thrown when configuration is invalid; `problems` names every offending key. */
export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n  ${problems.join("\n  ")}`);
    this.name = "ConfigError";
  }
}

/** Finds `-config PATH`, `--config PATH` or `--config=PATH` in the command line. */
export function configPathFromArgs(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    const eq = /^--?config=(.*)$/.exec(arg);
    if (eq) return eq[1];
    if (arg === "-config" || arg === "--config") {
      const path = argv[i + 1];
      if (path === undefined) throw new ConfigError([`${arg} needs a file path`]);
      return path;
    }
  }
  return undefined;
}

/**
 * Builds the configuration: defaults, then the JSON file (if any), then environment
 * overrides. Unknown keys and bad values are all reported at once. The result is frozen.
 */
export function loadConfig(options: { path?: string; env?: NodeJS.ProcessEnv; overrides?: Record<string, unknown> } = {}): Config {
  const env = options.env ?? process.env;
  const problems: string[] = [];
  let file: Record<string, unknown> = {};
  if (options.path !== undefined) {
    try {
      const parsed: unknown = JSON.parse(readFileSync(options.path, "utf8"));
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
        problems.push(`${options.path}: must contain a JSON object`);
      } else {
        file = parsed as Record<string, unknown>;
      }
    } catch (error) {
      problems.push(`${options.path}: ${(error as Error).message}`);
    }
  }
  const source = { ...file, ...options.overrides };
  const known = new Set(OPTIONS.map((option) => option.file));
  for (const key of Object.keys(source)) {
    if (!known.has(key)) problems.push(`${key}: unknown option`);
  }

  const config: Record<string, unknown> = {};
  for (const option of OPTIONS) {
    config[option.field] = option.default;
    if (option.file in source) {
      const result = coerceOption(option, source[option.file], false);
      if ("problem" in result) problems.push(`${option.file}: ${result.problem}`);
      else config[option.field] = result.value;
    }
    const envValue = option.env === undefined ? undefined : env[option.env];
    if (option.env !== undefined && envValue !== undefined && envValue !== "") {
      const result = coerceOption(option, envValue, true);
      if ("problem" in result) problems.push(`${option.env} (${option.file}): ${result.problem}`);
      else config[option.field] = result.value;
    }
  }
  const typed = config as unknown as Config;
  if (typed.pongWaitMs <= typed.pingIntervalMs) {
    problems.push("pong_wait: must be longer than ping_interval");
  }
  if (typed.headerTimeoutMs > typed.readTimeoutMs) {
    problems.push("header_timeout: must not be longer than read_timeout");
  }
  if (typed.rateLimitBurst < typed.rateLimitPerSec) {
    problems.push("rate_limit_burst: must be at least rate_limit_per_sec");
  }
  if ((typed.turnSecret === "") !== (typed.turnUrls.length === 0)) {
    problems.push("turn_secret/turn_urls: set both or neither");
  }
  if ((typed.tlsCert === "") !== (typed.tlsKey === "")) {
    problems.push("tls_cert/tls_key: set both or neither");
  }
  if ([typed.authJwtSecret, typed.authJwtPublicKey, typed.authJwksUrl].filter((value) => value !== "").length > 1) {
    problems.push("auth_jwt_secret/auth_jwt_public_key/auth_jwks_url: set at most one");
  }
  if (typed.connectionBurstPerIp < typed.connectionRatePerIp) problems.push("connection_burst_per_ip: must be at least connection_rate_per_ip");
  if (typed.registrationBurstPerIp < typed.registrationRatePerIp) problems.push("registration_burst_per_ip: must be at least registration_rate_per_ip");
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze(typed);
}
