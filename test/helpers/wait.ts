import { inspect } from "node:util";

export interface WaitOptions {
  /** Give up once this long has passed since the first read, in ms. */
  timeoutMs: number;
  /** Pause between one read and the next, in ms. Default 25. */
  intervalMs?: number;
  /** What is awaited, in words, for the error: "the worker to be replaced". */
  what: string;
}

/**
 * Reads until `check` passes on what was read, and returns that value. Reads at once, then every
 * `intervalMs`, and throws once `timeoutMs` has passed without a value that passes, naming `what`
 * and showing the last value read. An error thrown by `read` or `check` ends the wait at once.
 */
export async function waitFor<T>(read: () => T | Promise<T>, check: (value: T) => boolean, options: WaitOptions): Promise<T> {
  const { timeoutMs, intervalMs = 25, what } = options;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (check(value)) return value;
    if (Date.now() >= deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last value: ${inspect(value, { depth: 4, breakLength: Infinity })}`);
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(intervalMs, Math.max(0, deadline - Date.now()))));
  }
}
