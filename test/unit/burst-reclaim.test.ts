import { describe, expect, it } from "vitest";
import { getHeapStatistics } from "node:v8";
import { BurstReclaim, exposedCollect } from "../../src/process/burst-reclaim.ts";

const MB = 1024 * 1024;
const policy = { quietShare: 0.1, growthBytes: 64 * MB, windowPeriods: 24 };
const period = (cpuShare: number, heapMb: number) => ({ cpuShare, heapBytes: heapMb * MB });

describe("BurstReclaim", () => {
  it("collects on the first quiet period after the heap grew, then counts growth from the collected size", () => {
    const reclaim = new BurstReclaim(policy);
    // A storm: the heap grows while the worker is busy (a third of a core: six workers on two cores).
    expect(reclaim.next(period(0.05, 60))).toBe(false);
    expect(reclaim.next(period(0.33, 200))).toBe(false);
    expect(reclaim.next(period(0.3, 420))).toBe(false);
    expect(reclaim.next(period(0.04, 430))).toBe(true);
    reclaim.collected(250 * MB);
    // Quiet from then on, the heap where the collection left it: nothing more to do.
    expect(reclaim.next(period(0.03, 250))).toBe(false);
    expect(reclaim.next(period(0.03, 300))).toBe(false);
    // The next burst's growth is counted from 250 MB.
    expect(reclaim.next(period(0.5, 330))).toBe(false);
    expect(reclaim.next(period(0.02, 320))).toBe(true);
  });

  it("never collects a busy period, however large the heap grew", () => {
    const reclaim = new BurstReclaim(policy);
    expect([period(0.05, 50), period(0.2, 500), period(0.11, 900), period(0.8, 1200)].map((sample) => reclaim.next(sample))).toEqual([false, false, false, false]);
  });

  it("leaves a heap that grew less than the threshold alone", () => {
    const reclaim = new BurstReclaim(policy);
    expect([period(0.05, 100), period(0.4, 150), period(0.02, 163)].map((sample) => reclaim.next(sample))).toEqual([false, false, false]);
  });

  it("leaves a heap that grows slowly with its peers alone: growth spread over more than the window is no burst", () => {
    const reclaim = new BurstReclaim(policy);
    // 2 MB every period (24 MB a minute at 5 s periods), quiet throughout, for 100 periods: 200 MB in all.
    const decisions = Array.from({ length: 100 }, (_, index) => reclaim.next(period(0.05, 100 + 2 * index)));
    expect(decisions.some(Boolean)).toBe(false);
  });

  it("counts growth from the smallest the heap has been: one that shrank by itself starts over", () => {
    const reclaim = new BurstReclaim(policy);
    expect(reclaim.next(period(0.05, 300))).toBe(false);
    expect(reclaim.next(period(0.05, 120))).toBe(false);
    expect(reclaim.next(period(0.4, 190))).toBe(false);
    expect(reclaim.next(period(0.05, 190))).toBe(true);
  });
});

describe("exposedCollect", () => {
  it("gives a process started without --expose-gc a collection that frees its garbage", () => {
    const collect = exposedCollect();
    expect(collect).toBeTypeOf("function");
    let garbage: { index: number; text: string }[] | undefined = Array.from({ length: 400_000 }, (_, index) => ({ index, text: `item ${index}` }));
    const held = getHeapStatistics().used_heap_size;
    expect(garbage.length).toBe(400_000);
    garbage = undefined;
    collect?.();
    expect(held - getHeapStatistics().used_heap_size).toBeGreaterThan(20 * MB);
  });
});
