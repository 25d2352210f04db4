/** What a closed connection left of its key's message budget, as a BudgetStore gives it back. */
export interface SavedBudget {
  /** Tokens the bucket held when it was saved. */
  tokens: number;
  /** How long ago it was saved, by the store's own clock (ms): the caller adds what refilled meanwhile. */
  ageMs: number;
  /** The connection that saved it. */
  connectionId: string;
}

/** Take only the budget a given connection saves, waiting for it: see BudgetStore.take. */
export interface HandOver {
  /** The connection whose budget is wanted. */
  from: string;
  /** How long to wait for it, in ms. */
  waitMs: number;
}

/**
 * Where a key's message budget waits between two of its connections, for as long as it matters
 * (one refill period). One implementation per deployment mode: in memory (one process), the
 * cluster primary over IPC (the workers of one machine), Redis (nodes). Called once per
 * disconnect and once per registration, never per message.
 */
export interface BudgetStore {
  /**
   * Keeps what `connectionId` left of `fingerprint`'s budget for `ttlMs`, replacing whatever was
   * kept for it. Resolves once a take from any process of the deployment would find it.
   */
  save(fingerprint: string, connectionId: string, tokens: number, ttlMs: number): Promise<void>;
  /**
   * Removes and returns the budget kept for `fingerprint`, or undefined when there is none (never
   * saved, or expired). With `handOver`, only the budget saved by `handOver.from` counts: that
   * connection is still closing somewhere and saves on its way out, so this waits up to
   * `handOver.waitMs` for it; a budget saved by any other connection is older and is ignored.
   */
  take(fingerprint: string, handOver?: HandOver): Promise<SavedBudget | undefined>;
  /** Releases timers and waiting takes (which resolve undefined). Safe to call twice. */
  close(): Promise<void>;
}
