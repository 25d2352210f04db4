import { describe, expect, it } from "vitest";
import { backoffDelay, DEFAULT_BACKOFF } from "../../client/src/backoff.ts";

describe("the SDK's reconnection backoff", () => {
  it("doubles from initialDelayMs up to maxDelayMs, half of each wait fixed and half random", () => {
    const options = { ...DEFAULT_BACKOFF, initialDelayMs: 100, maxDelayMs: 1_000 };
    const lowest = [0, 1, 2, 3, 4, 5].map((attempt) => backoffDelay(attempt, options, () => 0));
    const highest = [0, 1, 2, 3, 4, 5].map((attempt) => backoffDelay(attempt, options, () => 1));
    expect(lowest).toEqual([50, 100, 200, 400, 500, 500]);
    expect(highest).toEqual([100, 200, 400, 800, 1_000, 1_000]);
  });

  it("stays finite for any attempt count", () => {
    expect(backoffDelay(10_000, DEFAULT_BACKOFF, () => 0.5)).toBe(3_750);
  });

  it("the default schedule reconnects well inside the server's default resume grace (15 s)", () => {
    const worst = [0, 1, 2, 3].reduce((sum, attempt) => sum + backoffDelay(attempt, DEFAULT_BACKOFF, () => 1), 0);
    expect(worst).toBeLessThan(15_000);
    expect(DEFAULT_BACKOFF.maxDelayMs).toBeLessThan(15_000);
  });
});
