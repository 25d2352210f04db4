import { performance } from "node:perf_hooks";
import type { BudgetStore, HandOver, SavedBudget } from "../budget-store.ts";

interface Entry {
  connectionId: string;
  tokens: number;
  savedAtMs: number;
  expiresAtMs: number;
}

interface Waiter {
  from: string;
  resolve: (budget: SavedBudget | undefined) => void;
  timer: NodeJS.Timeout;
}

/**
 * Budgets kept in this process: the store of a single-process server, and the one the cluster
 * primary keeps for all its workers (src/backends/cluster/limits-host.ts).
 *
 * Entries are kept in the order they were saved; with the one TTL a server uses, that is expiry
 * order, so each save drops the expired ones from the front (and a take never returns one).
 */
export class MemoryBudgetStore implements BudgetStore {
  private readonly entries = new Map<string, Entry>();
  private readonly waiters = new Map<string, Waiter[]>();

  /** `now`: a monotonic clock in ms (injected by unit tests). */
  constructor(private readonly now: () => number = () => performance.now()) {}

  save(fingerprint: string, connectionId: string, tokens: number, ttlMs: number): Promise<void> {
    const now = this.now();
    const waiting = this.waiters.get(fingerprint);
    const waiter = waiting?.find((candidate) => candidate.from === connectionId);
    if (waiting !== undefined && waiter !== undefined) {
      // Straight to the registration waiting for it; whatever was kept before is older.
      waiting.splice(waiting.indexOf(waiter), 1);
      if (waiting.length === 0) this.waiters.delete(fingerprint);
      clearTimeout(waiter.timer);
      this.entries.delete(fingerprint);
      waiter.resolve({ tokens, ageMs: 0, connectionId });
      return Promise.resolve();
    }
    this.entries.delete(fingerprint);
    this.entries.set(fingerprint, { connectionId, tokens, savedAtMs: now, expiresAtMs: now + ttlMs });
    this.dropExpired(now);
    return Promise.resolve();
  }

  take(fingerprint: string, handOver?: HandOver): Promise<SavedBudget | undefined> {
    const now = this.now();
    const entry = this.entries.get(fingerprint);
    if (entry !== undefined && entry.expiresAtMs <= now) this.entries.delete(fingerprint);
    else if (entry !== undefined && (handOver === undefined || entry.connectionId === handOver.from)) {
      this.entries.delete(fingerprint);
      return Promise.resolve({ tokens: entry.tokens, ageMs: now - entry.savedAtMs, connectionId: entry.connectionId });
    }
    if (handOver === undefined || handOver.waitMs <= 0) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const waiter: Waiter = {
        from: handOver.from,
        resolve,
        timer: setTimeout(() => {
          const waiting = this.waiters.get(fingerprint);
          if (waiting !== undefined) {
            waiting.splice(waiting.indexOf(waiter), 1);
            if (waiting.length === 0) this.waiters.delete(fingerprint);
          }
          resolve(undefined);
        }, handOver.waitMs),
      };
      waiter.timer.unref();
      const waiting = this.waiters.get(fingerprint);
      if (waiting === undefined) this.waiters.set(fingerprint, [waiter]);
      else waiting.push(waiter);
    });
  }

  /** Budgets kept right now (for tests and stats). */
  get size(): number {
    return this.entries.size;
  }

  close(): Promise<void> {
    for (const waiting of this.waiters.values()) {
      for (const waiter of waiting) {
        clearTimeout(waiter.timer);
        waiter.resolve(undefined);
      }
    }
    this.waiters.clear();
    this.entries.clear();
    return Promise.resolve();
  }

  private dropExpired(now: number): void {
    for (const [fingerprint, entry] of this.entries) {
      if (entry.expiresAtMs > now) return;
      this.entries.delete(fingerprint);
    }
  }
}
