/** What the sampler remembers of one key that had events. */
interface KeyState {
  /** When the key last got a line (ms of `now`); -Infinity before its first. */
  lastLineAt: number;
  /** Every event of the key so far, with a line or not. */
  events: number;
}

export interface LogSamplerOptions {
  /** One key (a connection) gets at most one line this often, in ms; 0 bounds keys only by `maxPerSecond`. */
  readonly keyIntervalMs: number;
  /** Lines a second for all keys together, counted in one-second windows. */
  readonly maxPerSecond: number;
  /** Milliseconds; only differences between two readings are used. */
  readonly now: () => number;
}

/**
 * Decides which events of a kind that an attacker can repeat at will (a connection over its rate
 * limit, a slow consumer) get a log line: at most one per key every `keyIntervalMs`, and at most
 * `maxPerSecond` for the whole process. Nothing is lost from the figures: a line reports how many
 * events got none since the line before it (all keys together), and `forget` returns a key's total.
 *
 * Keys are remembered only when `keyIntervalMs` is above 0, from their first event until `forget`:
 * the caller forgets a connection's key when it closes.
 */
export class LogSampler {
  private readonly keys = new Map<string, KeyState>();
  private windowStart = -Infinity;
  private linesInWindow = 0;
  /** Events without a line since the last line, all keys together. */
  private suppressed = 0;

  constructor(private readonly options: LogSamplerOptions) {}

  /**
   * Records one event of `key`. Returns undefined when it gets no line; otherwise the number of
   * events that got none since the previous line (the line's `suppressed` figure).
   */
  take(key: string): number | undefined {
    const now = this.options.now();
    let state = this.keys.get(key);
    if (state === undefined) {
      state = { lastLineAt: -Infinity, events: 0 };
      if (this.options.keyIntervalMs > 0) this.keys.set(key, state);
    }
    state.events++;
    if (now - state.lastLineAt < this.options.keyIntervalMs) {
      this.suppressed++;
      return undefined;
    }
    if (now - this.windowStart >= 1_000) {
      this.windowStart = now;
      this.linesInWindow = 0;
    }
    if (this.linesInWindow >= this.options.maxPerSecond) {
      this.suppressed++;
      return undefined;
    }
    this.linesInWindow++;
    state.lastLineAt = now;
    const suppressed = this.suppressed;
    this.suppressed = 0;
    return suppressed;
  }

  /** Forgets `key` and returns how many events it had in all (0 when none, or when keys are not remembered). */
  forget(key: string): number {
    if (this.keys.size === 0) return 0;
    const state = this.keys.get(key);
    if (state === undefined) return 0;
    this.keys.delete(key);
    return state.events;
  }

  /** Keys remembered now. */
  get size(): number {
    return this.keys.size;
  }
}
