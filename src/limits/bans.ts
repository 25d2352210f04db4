import type { Ban, StateStore } from "../backends/state-store.ts";
import { normalizeAddress } from "../trust/client-address.ts";

export interface BanListOptions {
  /** Where the deployment's bans are kept. */
  readonly store: Pick<StateStore, "listBans">;
  /** Wall-clock ms since the epoch: what bans expire by. */
  readonly now: () => number;
  /** Told when the bans cannot be read (the backend is down): the list in memory stays as it was. */
  readonly onError?: (error: unknown) => void;
}

/**
 * This process's copy of the deployment's bans, checked on every new connection and registration
 * without a call to the store: it is read again when a ban is made or lifted (every process is
 * told) and, as a fallback, every few seconds (`start`). A ban stops counting at its expiry by this
 * process's clock, whether or not the list was read again since.
 */
export class BanList {
  /** Banned fingerprint -> the latest expiry of its bans. */
  private fingerprints = new Map<string, number>();
  /** Banned address (normal form) -> the latest expiry of its bans. */
  private addresses = new Map<string, number>();
  private current: readonly Ban[] = [];
  private running: Promise<void> | undefined;
  private queued: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: BanListOptions) {}

  /** The bans as last read, expired ones included until the next read. */
  get bans(): readonly Ban[] {
    return this.current;
  }

  /** True when a ban of this fingerprint is in force. */
  fingerprintBanned(fingerprint: string): boolean {
    if (this.fingerprints.size === 0) return false;
    return (this.fingerprints.get(fingerprint) ?? 0) > this.options.now();
  }

  /** True when a ban of this client address is in force; undefined (no address known) is never banned. */
  addressBanned(address: string | undefined): boolean {
    // The usual case, no address ban at all, costs one size check per connection.
    if (this.addresses.size === 0 || address === undefined) return false;
    const normal = normalizeAddress(address);
    return normal !== undefined && (this.addresses.get(normal) ?? 0) > this.options.now();
  }

  /** Takes `bans` as the deployment's bans. */
  replace(bans: readonly Ban[]): void {
    const fingerprints = new Map<string, number>();
    const addresses = new Map<string, number>();
    for (const ban of bans) {
      const index = ban.kind === "fingerprint" ? fingerprints : addresses;
      index.set(ban.value, Math.max(index.get(ban.value) ?? 0, ban.expiresAt));
    }
    this.current = bans;
    this.fingerprints = fingerprints;
    this.addresses = addresses;
  }

  /**
   * Reads the bans from the store again. A call made while a read is under way waits for one more
   * read that starts after it (what changed before the call is then in), shared by every call made
   * meanwhile. Never rejects: a failed read keeps the list as it was (onError is told).
   */
  refresh(): Promise<void> {
    if (this.running === undefined) {
      this.running = this.read().finally(() => (this.running = undefined));
      return this.running;
    }
    this.queued ??= this.running.then(() => {
      this.queued = undefined;
      return this.refresh();
    });
    return this.queued;
  }

  /** Reads the bans now, then every `intervalMs`, calling `afterRead` after each periodic read. Safe to call twice. */
  start(intervalMs: number, afterRead: () => void): Promise<void> {
    if (this.timer === undefined) {
      this.timer = setInterval(() => void this.refresh().then(afterRead), intervalMs);
      this.timer.unref();
    }
    return this.refresh();
  }

  /** Stops the periodic reads. Safe to call twice. */
  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private async read(): Promise<void> {
    try {
      this.replace(await this.options.store.listBans(this.options.now()));
    } catch (error) {
      this.options.onError?.(error);
    }
  }
}
