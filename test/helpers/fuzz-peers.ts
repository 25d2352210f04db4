import type { Socket } from "socket.io-client";
import type WebSocket from "ws";
import type { Envelope, TestPeer } from "./peers.ts";
import { waitFor } from "./wait.ts";

/**
 * Well-behaved peers that watch the fuzzing from the outside, on the library clients
 * (ws and socket.io-client): a witness per lane that must receive exactly what the fuzzed
 * connections were allowed to send it, and an unrelated pair that keeps signalling throughout.
 */

/** Calls `listener` with every message `peer` receives, in envelope form, alongside its own buffer. */
function tap(peer: TestPeer, listener: (message: Envelope) => void): void {
  if (peer.transport === "ws") {
    (peer as unknown as { socket: WebSocket }).socket.on("message", (data: Buffer, isBinary: boolean) => {
      let message: unknown;
      try {
        message = isBinary ? undefined : JSON.parse(data.toString());
      } catch {
        message = undefined;
      }
      const valid = typeof message === "object" && message !== null && typeof (message as Envelope).type === "string";
      listener(valid ? (message as Envelope) : { type: "not-an-envelope", text: data.toString().slice(0, 200) });
    });
  } else {
    (peer as unknown as { socket: Socket }).socket.onAny((event: string, body: Record<string, unknown> | undefined) => listener({ type: event, ...(body ?? {}) }));
  }
}

/** What one fuzzed connection delivered to the witness. */
export interface Deliveries {
  signal: number;
  relay: number;
  broadcast: number;
  /** The closing signal and broadcast of the run (see Witness.settled). */
  sentinels: number;
}

/**
 * A member of a lane's shared namespace. Fuzzed connections signal, relay and broadcast to it;
 * it counts what arrives per sender. Each run ends with one sentinel signal and one sentinel
 * broadcast: deliveries from one sender to one peer keep their order on each path (direct for
 * signal and relay, the adapter for broadcasts), so once both sentinels are in, so is everything
 * the run sent before them.
 */
export class Witness {
  private readonly bySender = new Map<string, Deliveries>();
  private readonly waiters = new Set<() => void>();
  /** Messages that are neither a delivery nor a membership notice: there should be none. */
  readonly unexpected: Envelope[] = [];

  constructor(readonly peer: TestPeer) {
    tap(peer, (message) => this.receive(message));
  }

  private receive(message: Envelope): void {
    // The peer's own buffer only serves its requests; keep it from growing over thousands of runs.
    if (this.peer.received.length > 1_000) this.peer.received.length = 0;
    const type = message.type;
    if (type === "peer_joined" || type === "peer_left") return;
    if ((type !== "signal" && type !== "relay" && type !== "broadcast") || typeof message.from !== "string") {
      this.unexpected.push(message);
      return;
    }
    const counts = this.bySender.get(message.from) ?? { signal: 0, relay: 0, broadcast: 0, sentinels: 0 };
    this.bySender.set(message.from, counts);
    const payload = message.payload;
    const sentinel = type === "broadcast" ? (payload?.["data"] as Record<string, unknown> | undefined)?.["sentinel"] : payload?.["sentinel"];
    if (typeof sentinel === "string" && sentinel.startsWith("sentinel-")) counts.sentinels++;
    else counts[type]++;
    for (const waiter of this.waiters) waiter();
  }

  /** Resolves with what `sender` delivered once its two sentinels are in; rejects after `timeoutMs`. */
  settled(sender: string, timeoutMs: number): Promise<Deliveries> {
    const counts = (): Deliveries => this.bySender.get(sender) ?? { signal: 0, relay: 0, broadcast: 0, sentinels: 0 };
    if (counts().sentinels >= 2) return Promise.resolve(counts());
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (counts().sentinels < 2) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(counts());
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`the witness did not get the sentinels of ${sender} within ${timeoutMs}ms; it got ${JSON.stringify(counts())}`));
      }, timeoutMs);
      this.waiters.add(check);
    });
  }

  /** Forgets a finished run's sender. */
  forget(sender: string): void {
    this.bySender.delete(sender);
  }
}

/** The outcome of the keepalive pair's signalling. */
export interface KeepaliveReport {
  sent: number;
  received: number;
  missing: string[];
  duplicates: string[];
  outOfOrder: string[];
  errors: Envelope[];
  /** Longest time a signal took to arrive, in ms. */
  slowestMs: number;
}

/**
 * Two registered peers, one per transport, in a namespace nobody else uses: each sends the other
 * a `signal` every `periodMs` for as long as the fuzzing runs, and every one must arrive, in order.
 */
export class KeepalivePair {
  private timer: NodeJS.Timeout | undefined;
  private seq = 0;
  private readonly sentAt = new Map<string, number>();
  private readonly arrived: string[] = [];
  private slowestMs = 0;
  private readonly errors: Envelope[] = [];

  constructor(
    private readonly a: TestPeer,
    private readonly b: TestPeer,
  ) {
    for (const [self, other] of [
      [a, b],
      [b, a],
    ] as const) {
      tap(self, (message) => {
        if (self.received.length > 1_000) self.received.length = 0;
        if (message.type === "error") this.errors.push(message);
        const tag = message.payload?.["keepalive"];
        if (message.type !== "signal" || typeof tag !== "string" || message.from !== other.fingerprint) return;
        this.arrived.push(tag);
        const sentAt = this.sentAt.get(tag);
        if (sentAt !== undefined) this.slowestMs = Math.max(this.slowestMs, Date.now() - sentAt);
      });
    }
  }

  start(periodMs: number): void {
    this.timer = setInterval(() => {
      const n = this.seq++;
      for (const [from, to, side] of [
        [this.a, this.b, "a"],
        [this.b, this.a, "b"],
      ] as const) {
        const tag = `${side}${n}`;
        this.sentAt.set(tag, Date.now());
        from.send("signal", { to: to.fingerprint, payload: { signal_type: "offer", keepalive: tag } });
      }
    }, periodMs);
  }

  /** Stops sending, waits up to `timeoutMs` for the last signals, and reports. */
  async stop(timeoutMs: number): Promise<KeepaliveReport> {
    clearInterval(this.timer);
    // Those still missing after the wait are reported, not thrown.
    await waitFor(
      () => this.arrived.length,
      (count) => count >= this.sentAt.size,
      { timeoutMs, intervalMs: 20, what: `the last of ${this.sentAt.size} keepalive signals` },
    ).catch(() => undefined);
    const seen = new Set<string>();
    const duplicates: string[] = [];
    const outOfOrder: string[] = [];
    const last = { a: -1, b: -1 };
    for (const tag of this.arrived) {
      if (seen.has(tag)) duplicates.push(tag);
      seen.add(tag);
      const side = tag.charAt(0) as "a" | "b";
      const n = Number(tag.slice(1));
      if (n < last[side]) outOfOrder.push(tag);
      last[side] = Math.max(last[side], n);
    }
    const missing = [...this.sentAt.keys()].filter((tag) => !seen.has(tag));
    return { sent: this.sentAt.size, received: this.arrived.length, missing, duplicates, outOfOrder, errors: this.errors, slowestMs: this.slowestMs };
  }
}
