/** A connection as the keepalive sees it. */
export interface KeepalivePeer {
  /** When the peer last showed a sign of life (its connection opening, a message, a pong), on the keepalive's clock. Written by Keepalive. */
  lastSeenMs: number;
  /** Sends a keepalive ping (a WebSocket ping frame). */
  ping(): void;
  /** Drops the connection at once, without a close handshake: a peer that is gone would never finish one. */
  terminate(): void;
}

export interface KeepaliveOptions {
  /** Every watched peer is pinged this often, in ms (ping_interval); the first ping goes out one interval after start(). */
  pingIntervalMs: number;
  /** A peer with no sign of life for this long, in ms, is terminated (pong_wait). Must be longer than pingIntervalMs. */
  pongWaitMs: number;
  /** A monotonic clock in ms. */
  now: () => number;
  /** Runs `callback` once after `ms`; returns a function that cancels it. */
  setTimer: (callback: () => void, ms: number) => () => void;
}

/**
 * The raw /ws keepalive: which peers are pinged and which are terminated, when.
 *
 * Every watched peer is pinged once per ping_interval, and a peer is terminated exactly when
 * pong_wait has passed since its last sign of life (`seen`), not at the next ping round: the same
 * bound Socket.IO applies to its own connections (see server.ts). It runs on two timers whatever the
 * number of peers: one for the ping rounds, and one for the earliest deadline that falls before the
 * next round among the peers a round found due. That expiry looks only at those peers; the ones
 * that answered the round's ping in the meantime leave the list then. A silent peer is thus dropped
 * without waiting for a round, at the cost of one pass over the due peers per expiry.
 */
export class Keepalive<P extends KeepalivePeer> {
  private readonly peers = new Set<P>();
  /** Peers whose deadline falls before the next round, as of the last round or expiry. */
  private due: P[] = [];
  private nextRoundAt = Infinity;
  private cancelRound: (() => void) | undefined;
  private cancelExpiry: (() => void) | undefined;

  constructor(private readonly options: KeepaliveOptions) {
    // A new peer's deadline must fall after the next round, which is what finds it silent.
    if (!(options.pingIntervalMs > 0) || !(options.pongWaitMs > options.pingIntervalMs)) {
      throw new RangeError(`keepalive needs pingIntervalMs > 0 and pongWaitMs > pingIntervalMs (got ${options.pingIntervalMs}, ${options.pongWaitMs})`);
    }
  }

  /** Starts the ping rounds. Safe to call twice. */
  start(): void {
    if (this.cancelRound !== undefined) return;
    this.scheduleRound();
  }

  /** Stops pinging and terminating; peers stay watched. Safe to call twice. */
  stop(): void {
    this.cancelRound?.();
    this.cancelRound = undefined;
    this.cancelExpiry?.();
    this.cancelExpiry = undefined;
    this.nextRoundAt = Infinity;
    this.due = [];
  }

  /** Watches a new connection: its opening counts as its first sign of life. */
  watch(peer: P): void {
    peer.lastSeenMs = this.options.now();
    this.peers.add(peer);
  }

  /** Stops watching a connection (it closed). */
  unwatch(peer: P): void {
    this.peers.delete(peer);
  }

  /** Records a sign of life (a message or a pong): one clock read, no timer. */
  seen(peer: P): void {
    peer.lastSeenMs = this.options.now();
  }

  /** Peers watched: connections open and not terminated here. */
  get size(): number {
    return this.peers.size;
  }

  private scheduleRound(): void {
    this.nextRoundAt = this.options.now() + this.options.pingIntervalMs;
    this.cancelRound = this.options.setTimer(() => this.round(), this.options.pingIntervalMs);
  }

  /** Terminates the peers past their deadline, pings the others, and notes those due before the next round. */
  private round(): void {
    // Scheduled first, so that a peer that throws cannot stop the keepalive.
    this.scheduleRound();
    const now = this.options.now();
    const due: P[] = [];
    for (const peer of this.peers) {
      const deadline = peer.lastSeenMs + this.options.pongWaitMs;
      if (deadline <= now) {
        this.drop(peer);
        continue;
      }
      peer.ping();
      if (deadline < this.nextRoundAt) due.push(peer);
    }
    this.due = due;
    this.scheduleExpiry(now);
  }

  /** Terminates the due peers whose deadline has come; keeps those still silent but not yet due. */
  private expire(): void {
    this.cancelExpiry = undefined;
    const now = this.options.now();
    this.due = this.due.filter((peer) => {
      if (!this.peers.has(peer)) return false;
      const deadline = peer.lastSeenMs + this.options.pongWaitMs;
      if (deadline <= now) {
        this.drop(peer);
        return false;
      }
      return deadline < this.nextRoundAt;
    });
    this.scheduleExpiry(now);
  }

  private scheduleExpiry(now: number): void {
    this.cancelExpiry?.();
    this.cancelExpiry = undefined;
    let earliest = Infinity;
    for (const peer of this.due) earliest = Math.min(earliest, peer.lastSeenMs + this.options.pongWaitMs);
    if (earliest !== Infinity) this.cancelExpiry = this.options.setTimer(() => this.expire(), Math.max(0, earliest - now));
  }

  private drop(peer: P): void {
    if (this.peers.delete(peer)) peer.terminate();
  }
}
