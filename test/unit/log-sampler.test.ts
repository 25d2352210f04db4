import { describe, expect, it } from "vitest";
import { LogSampler } from "../../src/observability/log-sampler.ts";

/** A sampler on a clock that moves only when told to. */
function sampler(keyIntervalMs: number, maxPerSecond: number): { sampler: LogSampler; clock: { now: number } } {
  const clock = { now: 1_000_000 };
  return { sampler: new LogSampler({ keyIntervalMs, maxPerSecond, now: () => clock.now }), clock };
}

/** Takes `count` events of `key`; returns the `suppressed` figure of each that got a line. */
function burst(target: LogSampler, key: string, count: number): number[] {
  const lines: number[] = [];
  for (let i = 0; i < count; i++) {
    const suppressed = target.take(key);
    if (suppressed !== undefined) lines.push(suppressed);
  }
  return lines;
}

describe("LogSampler", () => {
  it("gives one line per key per interval, and the next line counts what was suppressed", () => {
    const { sampler: s, clock } = sampler(10_000, 100);
    expect(burst(s, "a", 200)).toEqual([0]);
    clock.now += 9_999;
    expect(burst(s, "a", 5)).toEqual([]);
    clock.now += 1;
    expect(burst(s, "a", 1)).toEqual([204]);
  });

  it("keys are sampled apart: another key gets its line at once, reporting the first key's suppressed events", () => {
    const { sampler: s } = sampler(10_000, 100);
    expect(burst(s, "a", 50)).toEqual([0]);
    expect(burst(s, "b", 50)).toEqual([49]);
    expect(burst(s, "c", 1)).toEqual([49]);
  });

  it("caps the lines of the whole process per second, whatever the number of keys", () => {
    const { sampler: s, clock } = sampler(10_000, 3);
    const lines: number[] = [];
    for (let key = 0; key < 1_000; key++) lines.push(...burst(s, `k${key}`, 1));
    expect(lines).toEqual([0, 0, 0]);
    // A new one-second window: lines again, the first with everything suppressed meanwhile.
    clock.now += 1_000;
    expect(burst(s, "late", 1)).toEqual([997]);
  });

  it("with no per-key interval only the process cap applies, and no key is remembered", () => {
    const { sampler: s, clock } = sampler(0, 2);
    expect(burst(s, "", 10)).toEqual([0, 0]);
    clock.now += 1_000;
    expect(burst(s, "", 10)).toEqual([8, 0]);
    expect(s.size).toBe(0);
    expect(s.forget("")).toBe(0);
  });

  it("forget returns a key's events in all and releases it", () => {
    const { sampler: s } = sampler(10_000, 100);
    burst(s, "a", 7);
    burst(s, "b", 2);
    expect(s.size).toBe(2);
    expect(s.forget("a")).toBe(7);
    expect(s.forget("a")).toBe(0);
    expect(s.forget("never")).toBe(0);
    expect(s.size).toBe(1);
    // A forgotten key starts over: its next event gets a line at once (b's line reported a's 6).
    expect(burst(s, "a", 1)).toEqual([1]);
  });

  it("a key over its interval but over the process cap gets no line, and its event is counted", () => {
    const { sampler: s, clock } = sampler(10_000, 1);
    expect(burst(s, "a", 1)).toEqual([0]);
    expect(burst(s, "b", 1)).toEqual([]);
    clock.now += 1_000;
    expect(burst(s, "b", 1)).toEqual([1]);
    expect(s.forget("b")).toBe(2);
  });
});
