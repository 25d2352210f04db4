/** How long to wait between reconnection attempts. */
export interface BackoffOptions {
  /** The first attempt's ceiling, in ms. Default 250. */
  initialDelayMs?: number;
  /** No wait is longer than this, in ms. Default 5000: well inside the server's default resume grace (15 s). */
  maxDelayMs?: number;
  /** Attempts before giving up (the client then closes). Default: never give up. */
  maxAttempts?: number;
}

export const DEFAULT_BACKOFF: Required<BackoffOptions> = { initialDelayMs: 250, maxDelayMs: 5_000, maxAttempts: Number.POSITIVE_INFINITY };

/**
 * The wait before attempt `attempt` (0 for the first): exponential up to `maxDelayMs`, with "equal
 * jitter" (half fixed, half random), so that the clients a restarted server dropped all at once do
 * not all come back in the same millisecond, yet none waits much less than the schedule says.
 */
export function backoffDelay(attempt: number, options: Required<BackoffOptions>, random: () => number = Math.random): number {
  const ceiling = Math.min(options.maxDelayMs, options.initialDelayMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + (ceiling / 2) * random());
}
