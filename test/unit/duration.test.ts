import { describe, expect, it } from "vitest";
import { parseDurationMs } from "../../src/config/duration.ts";

describe("parseDurationMs", () => {
  it.each([
    ["10s", 10_000],
    ["1m30s", 90_000],
    ["250ms", 250],
    ["5m", 300_000],
    ["1h", 3_600_000],
    ["1h2m3s4ms", 3_723_004],
    ["1.5s", 1_500],
    ["0s", 0],
  ])("reads the Go-style string %j as %d ms", (text, ms) => {
    expect(parseDurationMs(text)).toBe(ms);
  });

  it.each([
    [10_000, 10_000],
    [0, 0],
    [250.5, 250.5],
  ])("takes the number %d as milliseconds", (value, ms) => {
    expect(parseDurationMs(value)).toBe(ms);
  });

  it("takes a string of digits as milliseconds", () => {
    expect(parseDurationMs("1500")).toBe(1_500);
  });

  it.each(["", "abc", "10x", "s", "ms", "10 s", " 10s", "10s ", "1m 30s", "10s5", "-1s", "-100", "10sms", "1d", "1e3s"])("rejects the string %j", (text) => {
    expect(parseDurationMs(text)).toBeUndefined();
  });

  it.each([-1, Number.NaN, Number.POSITIVE_INFINITY, null, undefined, true, {}, ["10s"]])("rejects the value %j", (value) => {
    expect(parseDurationMs(value)).toBeUndefined();
  });
});
