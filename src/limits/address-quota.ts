import { TokenBucketPolicy, type Bucket } from "./token-bucket.ts";

/** Why a new connection of an address is refused (HTTP 429), or "ok" when it was counted. */
export type QuotaVerdict = "ok" | "rate" | "count";

/** The message of each refusal, for the HTTP answer and the log. */
export const QUOTA_REFUSALS: Readonly<Record<Exclude<QuotaVerdict, "ok">, string>> = {
  rate: "too many new connections from this address",
  count: "too many connections from this address",
};

export interface AddressQuotaOptions {
  /** Open connections one address may hold (max_connections_per_ip). */
  readonly maxConnections: number;
  /** New connections per second per address (connection_rate_per_ip) ... */
  readonly ratePerSec: number;
  /** ... and the burst above it (connection_burst_per_ip). */
  readonly burst: number;
  /** A monotonic clock in ms (the tests' fake one). */
  readonly now: () => number;
}

interface Entry {
  /** Connections counted and not yet released. */
  open: number;
  /** The address's new-connection budget. */
  readonly bucket: Bucket;
}

/**
 * Connections per client address, for one counting place (a single process, or a cluster primary
 * for its whole machine): how many each address holds open, and a token bucket of new connections
 * per address. `take` decides a new connection and counts it; whoever got "ok" calls `release`
 * exactly once when that connection ends (AddressHold makes that so).
 *
 * Memory: an entry lives while its address holds a connection or its bucket is not yet full again;
 * idle entries are swept at most once per refill period, during a `take`, so the table holds the
 * addresses seen within about two refill periods plus those with open connections.
 */
export class AddressQuota {
  private readonly policy: TokenBucketPolicy;
  private readonly entries = new Map<string, Entry>();
  private sweptAt: number;

  constructor(private readonly options: AddressQuotaOptions) {
    this.policy = new TokenBucketPolicy(options.ratePerSec, options.burst);
    this.sweptAt = options.now();
  }

  /**
   * Decides a new connection of `address`: "count" when it holds max_connections already, "rate"
   * when its budget of new connections is spent (a refused attempt spends nothing), else "ok" and
   * the connection is counted until `release`.
   */
  take(address: string): QuotaVerdict {
    const now = this.options.now();
    if (now - this.sweptAt >= this.policy.refillMs) this.sweep(now);
    let entry = this.entries.get(address);
    if (entry === undefined) {
      entry = { open: 0, bucket: this.policy.full(now) };
      this.entries.set(address, entry);
    }
    if (entry.open >= this.options.maxConnections) return "count";
    if (!this.policy.take(entry.bucket, now)) return "rate";
    entry.open++;
    return "ok";
  }

  /** A connection counted by `take` ended. */
  release(address: string): void {
    const entry = this.entries.get(address);
    if (entry !== undefined && entry.open > 0) entry.open--;
  }

  /** Connections `address` holds now. */
  openOf(address: string): number {
    return this.entries.get(address)?.open ?? 0;
  }

  /** Addresses the table holds (for the tests of its bound). */
  get size(): number {
    return this.entries.size;
  }

  /** Forgets addresses that hold nothing and whose budget is full again: they are as if never seen. */
  private sweep(now: number): void {
    this.sweptAt = now;
    for (const [address, entry] of this.entries) {
      if (entry.open === 0 && this.policy.level(entry.bucket, now) >= this.policy.burst) this.entries.delete(address);
    }
  }
}

/** Something that ends: a socket, an Engine.IO session. */
interface Ending {
  once(event: "close", listener: () => void): unknown;
  removeListener(event: "close", listener: () => void): unknown;
}

/**
 * One counted connection of an address, released exactly once: when what it is bound to closes
 * (first the socket that brought the request, then, for a new Engine.IO session, the session,
 * which outlives its handshake's socket), or by `release` when the connection is refused after it
 * was counted.
 */
export class AddressHold {
  private released = false;
  private bound: Ending | undefined;
  /** A bound method, not an arrow function: tsx names each arrow function as it is made, a cost per connection. */
  private readonly onClose = this.release.bind(this);

  constructor(
    /** The client address it counts against. */
    readonly address: string,
    private readonly onRelease: (address: string) => void,
  ) {}

  /** Releases it when `ending` closes, instead of what it was bound to before. */
  bindTo(ending: Ending): void {
    if (this.released) return;
    this.bound?.removeListener("close", this.onClose);
    this.bound = ending;
    ending.once("close", this.onClose);
  }

  /** Releases it now; later calls (and closes) do nothing. */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.bound?.removeListener("close", this.onClose);
    this.bound = undefined;
    this.onRelease(this.address);
  }
}
