import { describe, expect, it } from "vitest";
import { randomToken } from "../../src/trust/random-tokens.ts";

describe("randomToken", () => {
  it("gives base64url text of the asked length, never the same twice, across many pool refills", () => {
    const seen = new Set<string>();
    // 32-byte tokens: 128 per 4 KB pool, so this crosses the refill about 40 times, and 12-byte
    // ones interleaved land across the pool's end.
    for (let i = 0; i < 5_000; i++) {
      const token = randomToken(i % 3 === 0 ? 12 : 32);
      expect(token).toMatch(i % 3 === 0 ? /^[A-Za-z0-9_-]{16}$/ : /^[A-Za-z0-9_-]{43}$/);
      seen.add(token);
    }
    expect(seen.size).toBe(5_000);
  });

  it("spreads its bytes over every value (not a zeroed pool)", () => {
    const counts = new Array<number>(256).fill(0);
    for (let i = 0; i < 2_000; i++) for (const byte of Buffer.from(randomToken(32), "base64url")) counts[byte] = (counts[byte] ?? 0) + 1;
    // 64,000 bytes: about 250 of each value; a stuck or zeroed source would leave most at 0.
    expect(Math.min(...counts)).toBeGreaterThan(150);
  });

  it("refuses a size it cannot draw", () => {
    expect(() => randomToken(0)).toThrow(RangeError);
    expect(() => randomToken(4097)).toThrow(RangeError);
  });
});
