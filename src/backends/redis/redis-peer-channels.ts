import type { Writable } from "node:stream";
import { Redis } from "ioredis";
import { ErrorCode, ProtocolError } from "../../protocol/errors.ts";
import type { PeerChannels } from "../peer-channels.ts";
import type { RedisClient } from "./redis-connections.ts";

/**
 * Peer channels on Redis sharded pub/sub: `<prefix><peer>` is the peer's channel, subscribed by
 * the node holding the peer; SPUBLISH answers how many subscribers got a frame, so a target no
 * node holds is known from the send itself. On a Redis Cluster each channel lives on its slot's
 * master, so the message traffic spreads over the shards.
 *
 * `pub` and `sub` are the Socket.IO adapter's own connections: frames and the adapter's broadcasts
 * leave a node on one connection and arrive on one, so a peer's signal never overtakes the
 * broadcasts its own earlier actions caused (one Redis; across the shards of a cluster order holds
 * per channel).
 */
export class RedisPeerChannels implements PeerChannels {
  private receive: (peer: string, frame: string) => void = () => undefined;
  /** The publishing connections' sockets while they are corked for this tick's frames. */
  private corked: Writable[] | undefined;
  /** When the subscriber connection came back after losing Redis (performance.now()); undefined before any loss. */
  private backAt: number | undefined;
  private lostOnce = false;

  /** @param settleMs how long after a reconnection a peer no node holds may still be subscribing again */
  constructor(
    private readonly pub: RedisClient,
    private readonly sub: RedisClient,
    private readonly prefix: string,
    private readonly settleMs: number,
  ) {
    sub.on("close", () => (this.lostOnce = true));
    sub.on("ready", () => {
      if (this.lostOnce) this.backAt = performance.now();
    });
    // `smessage` carries every sharded message of the connection, the adapter's too (it reads them
    // as buffers through its own listener); ours are told apart by the prefix.
    sub.on("smessage", (channel: string, frame: string) => {
      if (channel.startsWith(prefix)) this.receive(channel.slice(prefix.length), frame);
    });
  }

  async hold(peer: string): Promise<void> {
    const subscribed = this.sub.ssubscribe(this.prefix + peer).catch(() => undefined);
    // While Redis is unreachable the subscription waits in the connection's queue and runs when it
    // is back: nothing to wait for now.
    if (this.sub.status === "ready") await subscribed;
  }

  release(peer: string): void {
    void this.sub.sunsubscribe(this.prefix + peer).catch(() => undefined);
  }

  send(peer: string, frame: string): Promise<number> {
    if (this.pub.status !== "ready") return Promise.reject(BROKER_DOWN);
    this.corkForThisTick();
    // SPUBLISH answers an integer: ioredis gives it as a number.
    return this.pub.spublish(this.prefix + peer, frame) as Promise<number>;
  }

  /**
   * The frames one tick sends (a read from a client often holds several messages) leave in one
   * write per Redis server: ioredis writes each command to its socket at once, one system call
   * each, which costs more than the command itself. Uncorked before any I/O can run, so nothing
   * waits longer than the tick. On a cluster, every master's connection is corked.
   */
  private corkForThisTick(): void {
    if (this.corked !== undefined) return;
    const sockets = this.pub instanceof Redis ? [this.pub.stream] : this.pub.nodes("master").filter((node) => node.status === "ready").map((node) => node.stream);
    this.corked = sockets;
    for (const socket of sockets) socket.cork();
    process.nextTick(() => {
      this.corked = undefined;
      for (const socket of sockets) socket.uncork();
    });
  }

  settling(): boolean {
    // The publisher may be back before the subscriber: until this node listens again, the other
    // nodes may well not either.
    if (this.sub.status !== "ready") return true;
    return this.backAt !== undefined && performance.now() - this.backAt < this.settleMs;
  }

  onFrame(receive: (peer: string, frame: string) => void): void {
    this.receive = receive;
  }
}

/** One error for every frame refused while Redis is unreachable (a burst of them is likely). */
const BROKER_DOWN = new ProtocolError(ErrorCode.Unavailable, "message could not be sent: Redis is unreachable");
