import { performance } from "node:perf_hooks";
import type { Logger } from "../observability/logger.ts";
import { LogSampler } from "../observability/log-sampler.ts";
import type { BudgetStore } from "../backends/budget-store.ts";
import { TokenBucketPolicy, type Bucket } from "./token-bucket.ts";

/**
 * How long a registration that replaced a connection on another process waits for that
 * connection's budget. It is closed and saves its budget within a few ms (two IPC or Redis hops);
 * this bounds the wait when that process is gone or stalled.
 */
export const HAND_OVER_WAIT_MS = 500;

/** Warning lines a second for budgets the store could not restore, and as many for those it could not save. */
const FAILURE_LINES_PER_SEC = 1;

export interface MessageBudgetsOptions {
  perSec: number;
  burst: number;
  store: BudgetStore;
  logger: Logger;
  /** Default HAND_OVER_WAIT_MS. */
  handOverWaitMs?: number;
  /** Monotonic clock in ms (injected by unit tests). */
  now?: () => number;
}

/** Anything that holds a budget: a session (the core's), or a test's stand-in. */
export interface BudgetHolder {
  budget: Bucket | undefined;
}

/**
 * The message budget of every connection of this process, and how it outlives the connection.
 *
 * A fingerprint has one connection at a time in the whole deployment, so the process holding it
 * limits its messages exactly, synchronously, with no I/O per message (`take`). What crosses
 * processes is what a connection leaves behind: on disconnect its level is saved in the
 * BudgetStore for one refill period (after which the bucket would be full anyway), and the key's
 * next registration, on any process, takes it back and continues from it, refilled by the time
 * in between. So reconnecting never starts a key over with a full burst.
 *
 * The order makes it exact: a connection saves before its peer is unregistered, and a
 * registration takes after its own registerPeer. A registration that found no live predecessor
 * therefore finds its budget. One that replaced a live connection either takes it over directly
 * (same process: `handOver`) or waits for it to be saved by the process closing it (`restore`
 * with the replaced connection's id, at most `handOverWaitMs`).
 *
 * When the store fails or the wait runs out, the connection starts with a full bucket (a fresh
 * budget) that is still saved when it leaves (never forgotten): a failing store costs the limit
 * one burst per registration, which the registration limit bounds, and never costs a
 * registration.
 */
export class MessageBudgets {
  readonly policy: TokenBucketPolicy;
  private readonly store: BudgetStore;
  private readonly logger: Logger;
  private readonly handOverWaitMs: number;
  private readonly now: () => number;
  /**
   * A store that fails, fails for every connection (thousands of them close in one stop or one
   * outage): a line a second for each kind of failure, counting the ones without a line.
   */
  private readonly restoreFailures: LogSampler;
  private readonly saveFailures: LogSampler;

  constructor(options: MessageBudgetsOptions) {
    this.policy = new TokenBucketPolicy(options.perSec, options.burst);
    this.store = options.store;
    this.logger = options.logger;
    this.handOverWaitMs = options.handOverWaitMs ?? HAND_OVER_WAIT_MS;
    this.now = options.now ?? (() => performance.now());
    this.restoreFailures = new LogSampler({ keyIntervalMs: 0, maxPerSecond: FAILURE_LINES_PER_SEC, now: this.now });
    this.saveFailures = new LogSampler({ keyIntervalMs: 0, maxPerSecond: FAILURE_LINES_PER_SEC, now: this.now });
  }

  /** A full budget, for a new connection (until it registers and its key's budget is restored). */
  fresh(): Bucket {
    return this.policy.full(this.now());
  }

  /** Takes one message's token; false when there is none (or the budget was handed over). */
  take(bucket: Bucket | undefined): boolean {
    return bucket !== undefined && this.policy.take(bucket, this.now());
  }

  /** Moves `from`'s budget out (it is being replaced by a connection of this process), to continue with it. */
  handOver(from: BudgetHolder): Bucket {
    const bucket = from.budget;
    from.budget = undefined;
    return bucket ?? this.fresh();
  }

  /**
   * The budget `fingerprint`'s previous connection left, refilled to now. `replaced`: the id of
   * a connection this registration replaced on another process, whose budget to wait for.
   * Never rejects.
   */
  async restore(fingerprint: string, replaced: string | undefined): Promise<Bucket> {
    try {
      const saved = await this.store.take(fingerprint, replaced === undefined ? undefined : { from: replaced, waitMs: this.handOverWaitMs });
      if (saved !== undefined) return this.policy.restored(saved.tokens, saved.ageMs, this.now());
      if (replaced !== undefined) this.logger.debug({ fingerprint, replaced }, "replaced connection's budget did not arrive; fresh budget");
    } catch (error) {
      const suppressed = this.restoreFailures.take("");
      if (suppressed !== undefined) this.logger.warn({ err: error, fingerprint, suppressed }, "could not restore a message budget; fresh budget");
    }
    return this.fresh();
  }

  /** Saves what `connectionId` left of `fingerprint`'s budget, for its next connection. Never rejects. */
  async release(fingerprint: string, connectionId: string, bucket: Bucket): Promise<void> {
    try {
      await this.store.save(fingerprint, connectionId, this.policy.level(bucket, this.now()), this.policy.refillMs);
    } catch (error) {
      const suppressed = this.saveFailures.take("");
      if (suppressed !== undefined) this.logger.warn({ err: error, fingerprint, suppressed }, "could not save a message budget");
    }
  }
}
