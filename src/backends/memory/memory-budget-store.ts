import { performance } from "node:perf_hooks";
import type { BudgetStore, HandOver, SavedBudget } from "../budget-store.ts";

interface Entry {
  fingerprint: string;
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
 * Entries are also queued in the order they were saved; with the one TTL a server uses, that is
 * expiry order, so each save drops the expired ones from the front of the queue (and a take never
 * returns one). The queue, not the Map's own order: a Map iterated from its start walks every slot
 * its deletions left since it was last rehashed, and a server deletes an entry per take.
 */
export class MemoryBudgetStore implements BudgetStore {
  private readonly entries = new Map<string, Entry>();
  /** Entries in save order from `head` on; one taken or saved over stays until it reaches the front. */
  private queue: Entry[] = [];
  private head = 0;
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
    const entry: Entry = { fingerprint, connectionId, tokens, savedAtMs: now, expiresAtMs: now + ttlMs };
    this.entries.set(fingerprint, entry);
    this.queue.push(entry);
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
    this.queue = [];
    this.head = 0;
    return Promise.resolve();
  }

  private dropExpired(now: number): void {
    const queue = this.queue;
    let head = this.head;
    while (head < queue.length && (queue[head] as Entry).expiresAtMs <= now) {
      const entry = queue[head++] as Entry;
      if (this.entries.get(entry.fingerprint) === entry) this.entries.delete(entry.fingerprint);
    }
    // Compacted once the dropped front is the larger half: each entry is moved at most once on average.
    if (head > 64 && head * 2 > queue.length) {
      this.queue = queue.slice(head);
      head = 0;
    }
    this.head = head;
  }
}
