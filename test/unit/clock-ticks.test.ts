import { describe, expect, it } from "vitest";
import { onClockTicks } from "../../src/cluster/clock-ticks.ts";
import type { Clock } from "../../src/core/context.ts";
import { FakeClock } from "../helpers/fake-clock.ts";

/** The fake clock as a Clock whose nth timer fires `skew(n)` ms after (or, negative, before) it is due. */
function clockOf(fake: FakeClock, skew: (timer: number) => number): Clock {
  let timers = 0;
  return { now: () => fake.now, setTimer: (callback, ms) => fake.setTimer(callback, Math.max(0, ms + skew(timers++))) };
}

/** Starts ticks of `periodMs` now; returns the times they ran at and the stop. */
function ticks(fake: FakeClock, periodMs: number, skew: (timer: number) => number = () => 0): { at: number[]; stop: () => void } {
  const at: number[] = [];
  const stop = onClockTicks(clockOf(fake, skew), periodMs, () => at.push(fake.now));
  return { at, stop };
}

describe("onClockTicks", () => {
  it("runs on the multiples of the period from the next one on, whenever it started", () => {
    const fake = new FakeClock();
    fake.now = 1_234;
    const early = ticks(fake, 1_000);
    fake.advance(500);
    const late = ticks(fake, 1_000);
    fake.advance(3_000);
    expect(early.at).toEqual([2_000, 3_000, 4_000]);
    expect(late.at).toEqual([2_000, 3_000, 4_000]);
  });

  it("does not drift when a timer fires late: the next wait is shorter", () => {
    const fake = new FakeClock();
    const run = ticks(fake, 1_000, (timer) => (timer === 0 ? 300 : 0));
    fake.advance(5_000);
    expect(run.at).toEqual([1_300, 2_000, 3_000, 4_000, 5_000]);
  });

  it("stays as late as its timers are, never later: lateness does not add up", () => {
    const fake = new FakeClock();
    const run = ticks(fake, 1_000, () => 300);
    fake.advance(4_500);
    expect(run.at).toEqual([1_300, 2_300, 3_300, 4_300]);
  });

  it("runs once a tick when its timers fire a little early", () => {
    const fake = new FakeClock();
    const run = ticks(fake, 1_000, () => -5);
    fake.advance(4_000);
    expect(run.at).toEqual([995, 1_995, 2_995, 3_995]);
  });

  it("skips the ticks it missed altogether", () => {
    const fake = new FakeClock();
    const run = ticks(fake, 1_000, () => 2_500);
    fake.advance(7_000);
    // Due at 1,000 and run at 3,500; the ticks of 2,000 and 3,000 are gone, 4,000 is next (and late again).
    expect(run.at).toEqual([3_500, 6_500]);
  });

  it("stops for good, its pending timer cancelled", () => {
    const fake = new FakeClock();
    const run = ticks(fake, 1_000);
    fake.advance(1_500);
    run.stop();
    fake.advance(3_000);
    expect(run.at).toEqual([1_000]);
    expect(fake.pending).toBe(0);
  });
});
