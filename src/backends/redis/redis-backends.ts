import { hostname } from "node:os";
import { createAdapter, createShardedAdapter } from "@socket.io/redis-adapter";
import { closeRedis, openRedis, redisEndpoint, type RedisClient } from "./redis-connections.ts";
import type { ServerOptions } from "socket.io";
import type { Config } from "../../config/load.ts";
import { addressRegistrations, createRedisRegistrationLimits } from "../registration-limiter.ts";
import { RedisBudgetStore } from "./redis-budget-store.ts";
import type { Logger } from "../../observability/logger.ts";
import { NodeLiveness } from "./node-liveness.ts";
import { RedisPeerChannels } from "./redis-peer-channels.ts";
import { RedisStore } from "./redis-store.ts";
import type { BackendHandlers, Backends } from "../backends.ts";

/**
 * Key prefix of the shared state and of node liveness. Its hash tag puts all of them in one slot
 * of a Redis Cluster, so each state script and each liveness MULTI/MGET is atomic there; the same
 * names in every mode (a tag costs nothing on one Redis), so one layout is tested and documented.
 */
const KEY_PREFIX = "{ps}:";
/**
 * Key prefix of the registration limiter's counters and the kept budgets: each is read and written
 * alone (one key per command or script), so they carry no tag and a Cluster spreads them, and the
 * work they cost at every registration, over its masters.
 */
const SPREAD_KEY_PREFIX = "ps:";
/** Prefix of the peers' channels (RedisPeerChannels). */
const PEER_CHANNEL_PREFIX = "ps:to:";
/** A node silent this long is dead: its peers are removed cluster-wide (the bound is 10 s). */
const NODE_TTL_MS = 6_000;
const NODE_BEAT_MS = 2_000;
/** Longest wait between reconnection attempts of the adapter's connections (like the store's). */
const ADAPTER_RECONNECT_CAP_MS = 1_000;
/**
 * After an outage, how long a node waits before announcing the peers that left meanwhile: by
 * then every node's adapter connections are back (each retries at least every
 * ADAPTER_RECONNECT_CAP_MS), so no node misses the peer_left.
 */
const RECOVERY_SETTLE_MS = 2 * ADAPTER_RECONNECT_CAP_MS;
/**
 * Behind Sentinel the nodes do not find the new master at the same moment: a sentinel other than
 * the failover's leader learns of it from the leader's hello messages (every 2 s), and a node asking
 * it meanwhile is sent to the dead master and retries. Those seconds come on top of the settle.
 */
const SENTINEL_SETTLE_MS = RECOVERY_SETTLE_MS + 4_000;

/** Everything a node needs to share one world with the others through Redis. */
export interface RedisBackends extends Backends {
  readonly store: RedisStore;
  readonly adapter: NonNullable<ServerOptions["adapter"]>;
  /**
   * Starts node liveness and outage recovery for a started server: dead nodes' peers are
   * announced everywhere, and when Redis is back the server retries failed cleanups or, if Redis
   * lost its state, registers its peers again.
   */
  attach(handlers: BackendHandlers): Promise<void>;
  /** Removes the peers of a node known to be dead, and announces them everywhere. */
  reapNode(nodeId: string): Promise<void>;
  /** Leaves the cluster cleanly: removes any peer of this node still listed, stops beating, disconnects. */
  close(): Promise<void>;
}

function connected(client: RedisClient, timeoutMs: number): Promise<void> {
  if (client.status === "ready") return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("Redis did not answer in time")), timeoutMs);
    client.once("ready", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/**
 * Connects a node to Redis: the shared state store, the Socket.IO adapter and node liveness, each
 * on its own connection (pub/sub connections cannot run commands; heartbeats must not wait behind
 * other calls). Waits for Redis at start-up for at most `timeoutMs`.
 */
export async function connectRedisBackends(config: Config, nodeId: string, instance: string | undefined, logger: Logger, timeoutMs = 10_000): Promise<RedisBackends> {
  const endpoint = redisEndpoint(config);
  const settleMs = endpoint.mode === "sentinel" ? SENTINEL_SETTLE_MS : RECOVERY_SETTLE_MS;
  const store = new RedisStore({ endpoint, keyPrefix: KEY_PREFIX });
  await store.whenReady(timeoutMs);
  const adapterOptions = { lazyConnect: false, maxRetriesPerRequest: null, retryStrategy: (attempt: number) => Math.min(attempt * 100, ADAPTER_RECONNECT_CAP_MS) };
  const pub = openRedis(endpoint, adapterOptions);
  const sub = openRedis(endpoint, adapterOptions, { shardedSubscriber: true });
  const beat = openRedis(endpoint, { enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: 1_000 });
  // A short timeout hands over to the in-memory insurance limiter at once when Redis stalls, and
  // gives a registration a fresh message budget rather than keep it waiting.
  const limits = openRedis(endpoint, { enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: 250, enableAutoPipelining: true });
  for (const client of [pub, sub, beat, limits]) client.on("error", (error: Error) => logger.debug({ err: error }, "redis connection error"));
  await Promise.all([pub, sub, beat, limits].map((client) => connected(client, timeoutMs)));
  const adapter =
    config.redisAdapter === "sharded" ? createShardedAdapter(pub, sub, { subscriptionMode: "dynamic" }) : createAdapter(pub, sub);
  let liveness: NodeLiveness | undefined;
  let closed = false;
  return {
    store,
    adapter,
    peerChannels: new RedisPeerChannels(pub, sub, PEER_CHANNEL_PREFIX, settleMs),
    registrationLimits: createRedisRegistrationLimits(limits, SPREAD_KEY_PREFIX, addressRegistrations(config)),
    budgetStore: new RedisBudgetStore(limits, SPREAD_KEY_PREFIX),
    health: () => ({ redis: store.isReady() ? "up" : "down" }),
    async attach(server) {
      store.onStatusChange((status, details) => {
        if (status === "ready") {
          logger.info({ backend: "redis", stateLost: details.stateLost }, "backend up");
          void server.storeRecovered(details.stateLost, settleMs);
        } else logger.warn({ backend: "redis" }, "backend down");
      });
      liveness = new NodeLiveness({
        redis: beat,
        keyPrefix: KEY_PREFIX,
        nodeId,
        instance: instance === undefined ? undefined : `${hostname()}:${instance}`,
        ttlMs: NODE_TTL_MS,
        intervalMs: NODE_BEAT_MS,
        removeNode: (node) => store.removeNode(node),
        onDepartures: (departures) => server.announceDepartures(departures, true),
        logger,
      });
      await liveness.start();
      logger.info({ nodeId, redisAdapter: config.redisAdapter }, "node joined");
    },
    async reapNode(deadNode) {
      await liveness?.reap(deadNode).catch((error: unknown) => logger.warn({ err: error, node: deadNode }, "could not reap a dead node"));
    },
    async close() {
      if (closed) return;
      closed = true;
      await store.removeNode(nodeId).catch(() => undefined);
      await liveness?.stop();
      await store.close();
      for (const client of [pub, sub, beat, limits]) void closeRedis(client);
      logger.info({ nodeId }, "node left");
    },
  };
}
