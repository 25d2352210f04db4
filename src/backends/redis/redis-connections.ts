import { Cluster, Redis, type ClusterOptions, type RedisOptions } from "ioredis";
import type { Config } from "../../config/load.ts";

/** A connection to the deployment's Redis, whichever of the three modes it runs in. */
export type RedisClient = Redis | Cluster;

/**
 * Where the deployment's Redis is: one server (`single`), a Redis Cluster reached through seed
 * nodes (`cluster`), or a master found through Sentinel (`sentinel`).
 */
export type RedisEndpoint =
  | { readonly mode: "single"; readonly url: string }
  | { readonly mode: "cluster"; readonly seeds: readonly HostPort[]; readonly password: string }
  | { readonly mode: "sentinel"; readonly sentinels: readonly HostPort[]; readonly name: string; readonly password: string; readonly db: number };

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** What a connection is for, where the modes differ. */
export interface ConnectionRole {
  /** Receives sharded pub/sub messages (SSUBSCRIBE): on a cluster, one subscriber per master. */
  readonly shardedSubscriber?: boolean;
}

/** `redis_addr` is `host:port` (or a full redis:// URL); password and db come from their own options. */
export function redisUrl(config: Pick<Config, "redisAddr" | "redisPassword" | "redisDb">): string {
  const base = config.redisAddr.includes("://") ? config.redisAddr : `redis://${config.redisAddr}`;
  const url = new URL(base);
  if (config.redisPassword !== "") url.password = config.redisPassword;
  if (config.redisDb !== 0) url.pathname = `/${config.redisDb}`;
  return url.toString();
}

/** A comma-separated `host:port` list (cluster seeds, sentinels); a missing port is `defaultPort`. */
export function parseHostList(list: string, defaultPort: number): HostPort[] {
  return list
    .split(",")
    .map((entry) => entry.trim())
    .filter((entry) => entry !== "")
    .map((entry) => {
      const url = new URL(entry.includes("://") ? entry : `redis://${entry}`);
      return { host: url.hostname.replace(/^\[(.*)\]$/, "$1"), port: url.port === "" ? defaultPort : Number(url.port) };
    });
}

export function redisEndpoint(config: Pick<Config, "redisMode" | "redisAddr" | "redisPassword" | "redisDb" | "redisSentinelName">): RedisEndpoint {
  switch (config.redisMode) {
    case "single":
      return { mode: "single", url: redisUrl(config) };
    case "cluster":
      return { mode: "cluster", seeds: parseHostList(config.redisAddr, 6379), password: config.redisPassword };
    case "sentinel":
      return { mode: "sentinel", sentinels: parseHostList(config.redisAddr, 26379), name: config.redisSentinelName, password: config.redisPassword, db: config.redisDb };
  }
}

/**
 * Opens a connection with `options` (ioredis's per-connection options: timeouts, queueing,
 * retries). On a cluster the same options apply to the connection to every node, and the
 * cluster-wide ones (offline queue, retries) are carried over to the Cluster itself.
 */
export function openRedis(endpoint: RedisEndpoint, options: RedisOptions, role: ConnectionRole = {}): RedisClient {
  switch (endpoint.mode) {
    case "single":
      return new Redis(endpoint.url, options);
    case "sentinel":
      return reconnectingWhenGivenUp(
        new Redis({
          // Every connection follows the master the sentinels name now: one that lands on a replica
          // fails ioredis's role check and asks the sentinels again; one left open to a master that
          // was demoted without closing it (a manual failover, a partition that healed) is dropped
          // when a sentinel announces +switch-master, or at its first READONLY reply. The command
          // that met READONLY is not resent: the store never runs a script twice (the caller gets 503).
          role: "master",
          failoverDetector: true,
          reconnectOnError: (error) => (error.message.startsWith("READONLY") ? 1 : false),
          // A sentinel that accepts the connection but does not answer must not hold the search up.
          sentinelCommandTimeout: 1_000,
          ...options,
          sentinels: endpoint.sentinels.map(({ host, port }) => ({ host, port })),
          name: endpoint.name,
          ...(endpoint.password === "" ? {} : { password: endpoint.password }),
          db: endpoint.db,
        }),
      );
    case "cluster": {
      const clusterOptions: ClusterOptions = {
        redisOptions: { ...options, ...(endpoint.password === "" ? {} : { password: endpoint.password }) },
        enableOfflineQueue: options.enableOfflineQueue ?? true,
        shardedSubscribers: role.shardedSubscriber === true,
        clusterRetryStrategy: (attempt) => Math.min(attempt * 100, 1_000),
        ...(options.lazyConnect === undefined ? {} : { lazyConnect: options.lazyConnect }),
      };
      return new Cluster(
        endpoint.seeds.map(({ host, port }) => ({ host, port })),
        clusterOptions,
      );
    }
  }
}

/** Connections closed by their owner: these stay closed (see reconnectingWhenGivenUp). */
const closedOnPurpose = new WeakSet<RedisClient>();

/** Closes a connection for good (saying QUIT first when `politely`): it is never connected again. */
export async function closeRedis(client: RedisClient, politely = false): Promise<void> {
  closedOnPurpose.add(client);
  if (politely) await client.quit().catch(() => undefined);
  client.disconnect();
}

/** How soon a connection ioredis gave up is connected again: a failover was just announced. */
const GIVEN_UP_RECONNECT_MS = 100;

/**
 * ioredis gives a Sentinel connection up for good ("end") when a sentinel announces a failover
 * while the connection is asking a sentinel where the master is: the failover detector of its
 * previous connection closes the connector in the middle of the attempt, which then fails with
 * "Connection is closed" and is not retried. Such a connection connects again (its subscriptions
 * are renewed on "ready" as after any reconnection); one its owner closed does not.
 */
function reconnectingWhenGivenUp(client: Redis): Redis {
  client.on("end", () => {
    if (closedOnPurpose.has(client)) return;
    setTimeout(() => {
      if (!closedOnPurpose.has(client) && client.status === "end") client.connect().catch(() => undefined);
    }, GIVEN_UP_RECONNECT_MS).unref();
  });
  return client;
}
