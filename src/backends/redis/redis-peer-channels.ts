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

  constructor(
    private readonly pub: RedisClient,
    private readonly sub: RedisClient,
    private readonly prefix: string,
  ) {
    // `smessage` carries every sharded message of the connection, the adapter's too (it reads them
    // as buffers through its own listener); ours are told apart by the prefix.
    sub.on("smessage", (channel: string, frame: string) => {
      if (channel.startsWith(prefix)) this.receive(channel.slice(prefix.length), frame);
    });
  }

  hold(peer: string): void {
    void this.sub.ssubscribe(this.prefix + peer).catch(() => undefined);
  }

  release(peer: string): void {
    void this.sub.sunsubscribe(this.prefix + peer).catch(() => undefined);
  }

  send(peer: string, frame: string): Promise<number> {
    // SPUBLISH answers an integer: ioredis gives it as a number.
    return this.pub.spublish(this.prefix + peer, frame) as Promise<number>;
  }

  onFrame(receive: (peer: string, frame: string) => void): void {
    this.receive = receive;
  }
}
