import { createShardedAdapter } from "@socket.io/redis-adapter";
import { Cluster, Redis } from "ioredis";

/** Where a relay node's Redis is: one server (`host:port`), or a Redis Cluster (`host:port,...` seeds). */
export interface RedisArgs {
  readonly addr: string;
  readonly mode: "single" | "cluster";
}

/** Socket.IO's sharded Redis adapter, as a relay node plugs it in, and its two connections. */
export interface ShardedAdapter {
  readonly adapter: ReturnType<typeof createShardedAdapter>;
  /** Disconnects both connections. */
  close(): void;
}

const READY_TIMEOUT_MS = 10_000;

function ready(client: Redis | Cluster): Promise<void> {
  if (client.status === "ready") return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`Redis did not answer within ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS);
    client.once("ready", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

function open(redis: RedisArgs, shardedSubscriber: boolean): Redis | Cluster {
  if (redis.mode === "single") return new Redis(`redis://${redis.addr}`, { maxRetriesPerRequest: null });
  const seeds = redis.addr.split(",").map((seed) => {
    const url = new URL(`redis://${seed.trim()}`);
    return { host: url.hostname, port: Number(url.port) };
  });
  // On a cluster, a channel lives on the shard of its slot: the subscriber holds a connection to every master.
  return new Cluster(seeds, { shardedSubscribers: shardedSubscriber, redisOptions: { maxRetriesPerRequest: null } });
}

/**
 * `createShardedAdapter(pub, sub, { subscriptionMode: "dynamic" })` on ioredis connections, the
 * adapter as its documentation sets it up: a room other than a socket id gets a channel of its
 * own, to which only the nodes holding a member of that room subscribe. Resolves once both
 * connections are ready.
 */
export async function connectShardedAdapter(redis: RedisArgs): Promise<ShardedAdapter> {
  const pub = open(redis, false);
  const sub = open(redis, true);
  const close = (): void => {
    pub.disconnect();
    sub.disconnect();
  };
  try {
    await Promise.all([ready(pub), ready(sub)]);
  } catch (error) {
    close();
    throw error;
  }
  return { adapter: createShardedAdapter(pub, sub, { subscriptionMode: "dynamic" }), close };
}
