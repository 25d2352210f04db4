import type { RedisClient } from "./redis-connections.ts";
import type { Logger } from "../../observability/logger.ts";
import type { Departure } from "../state-store.ts";

export interface NodeLivenessOptions {
  /** A connection of its own (heartbeats must not queue behind slow calls). */
  redis: RedisClient;
  /** Holds a hash tag (like the store's): on a Redis Cluster the MULTI of stop() and the MGET of the alive keys need one slot. */
  keyPrefix: string;
  nodeId: string;
  /**
   * Names this process across restarts (host, listen address and worker slot): a node that
   * starts finds the node id its earlier self used there and removes that node's peers at once,
   * without waiting for the heartbeat to expire. Undefined when there is no stable name (port 0):
   * an earlier self is then left to heartbeat expiry.
   */
  instance: string | undefined;
  /** A node whose heartbeat is older than this is dead. */
  ttlMs: number;
  /** How often to beat and to look for dead nodes. */
  intervalMs: number;
  /** Removes a dead node's peers from the shared state. */
  removeNode: (nodeId: string) => Promise<Departure[]>;
  /** Told what a dead node's peers left behind; this node is the one that must announce it. */
  onDepartures: (departures: Departure[]) => void;
  logger: Logger;
}

/**
 * Node liveness in Redis. Each node refreshes `alive:<node>` (expiring after ttl) and is listed in
 * `nodes`. Every node looks for listed nodes whose key expired; whoever removes a dead node from
 * `nodes` first (SREM answers 1 to exactly one caller) removes its peers and announces them, so a
 * crash is cleaned up cluster-wide within ttl + interval, once. A node whose connection broke
 * judges nobody for a ttl after it is back: the others may have been cut off with it.
 */
export class NodeLiveness {
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  /** No node is judged dead before this time (ms since the epoch): see reconnected. */
  private judgeFrom = 0;
  private readonly reconnected = (): void => {
    // Back after a break (an outage, a Sentinel failover). The other nodes could not beat either,
    // and a promoted replica may lack their last beats: their keys may have expired although they
    // are alive. Beat at once, and judge nobody before a full ttl, by when every live node has beaten.
    this.judgeFrom = Date.now() + this.options.ttlMs;
    void this.tick();
  };

  constructor(private readonly options: NodeLivenessOptions) {}

  private key(kind: string, id = ""): string {
    return `${this.options.keyPrefix}${kind}${id}`;
  }

  async start(): Promise<void> {
    const { redis, nodeId, instance } = this.options;
    try {
      await this.beat();
      if (instance !== undefined) {
        const previous = await redis.getset(this.key("instance:", instance), nodeId);
        if (previous !== null && previous !== nodeId) await this.reap(previous);
      }
    } catch (error) {
      this.options.logger.warn({ err: error }, "could not check for an earlier instance");
    }
    this.timer = setInterval(() => void this.tick(), this.options.intervalMs);
    this.timer.unref();
    // Started on a ready connection: each "ready" from now on follows a break.
    redis.on("ready", this.reconnected);
  }

  /** Stops beating and leaves the list: a clean shutdown has already unregistered its peers. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    this.options.redis.off("ready", this.reconnected);
    try {
      await this.options.redis.multi().del(this.key("alive:", this.options.nodeId)).srem(this.key("nodes"), this.options.nodeId).exec();
    } catch {
      // Redis is down: the heartbeat expires and another node (or our next incarnation) cleans up.
    }
  }

  private async tick(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      await this.beat();
      if (Date.now() < this.judgeFrom) return;
      const nodes = await this.options.redis.smembers(this.key("nodes"));
      const others = nodes.filter((node) => node !== this.options.nodeId);
      if (others.length === 0) return;
      const alive = await this.options.redis.mget(others.map((node) => this.key("alive:", node)));
      for (let i = 0; i < others.length; i++) {
        if (alive[i] === null) await this.reap(others[i] as string);
      }
    } catch (error) {
      this.options.logger.debug({ err: error }, "liveness tick failed");
    } finally {
      this.running = false;
    }
  }

  private async beat(): Promise<void> {
    const { redis, nodeId, ttlMs } = this.options;
    // Alive first, listed second: a reaper never sees a listed node that has not beaten yet.
    await redis.set(this.key("alive:", nodeId), String(Date.now()), "PX", ttlMs);
    await redis.sadd(this.key("nodes"), nodeId);
  }

  /** Removes a node known to be dead (e.g. a sibling worker that exited) without waiting for its heartbeat to expire. */
  async reap(deadNode: string): Promise<void> {
    const claimed = await this.options.redis.srem(this.key("nodes"), deadNode);
    // A node never listed (e.g. an earlier instance that died before its first beat) may still own peers.
    const departures = await this.options.removeNode(deadNode);
    if (claimed === 0 && departures.length === 0) return;
    this.options.logger.warn({ node: deadNode, peersRemoved: departures.length }, "removed a dead node's peers");
    if (departures.length > 0) this.options.onDepartures(departures);
  }
}
