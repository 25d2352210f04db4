import { pino } from "pino";
import { describe, expect, it } from "vitest";
import type { BudgetStore } from "../../src/backends/budget-store.ts";
import { MemoryBudgetStore } from "../../src/backends/memory/memory-budget-store.ts";
import { MessageBudgets, type BudgetHolder } from "../../src/limits/message-budgets.ts";

/** A clock that only moves when told to. */
function clock(): { now: () => number; advance: (ms: number) => void } {
  let now = 0;
  return { now: () => now, advance: (ms) => (now += ms) };
}

const logger = pino({ level: "silent" });
/** A budget store that is out of reach. */
const failing: BudgetStore = {
  save: () => Promise.reject(new Error("down")),
  take: () => Promise.reject(new Error("down")),
  close: () => Promise.resolve(),
};
const FP = "f".repeat(64);

function setup(store?: BudgetStore) {
  const time = clock();
  const memory = new MemoryBudgetStore(time.now);
  const budgets = new MessageBudgets({ perSec: 20, burst: 40, store: store ?? memory, logger, now: time.now });
  const spend = (holder: BudgetHolder, count: number): number => {
    let taken = 0;
    for (let i = 0; i < count; i++) if (budgets.take(holder.budget)) taken++;
    return taken;
  };
  return { time, memory, budgets, spend };
}

describe("MessageBudgets", () => {
  it("a key's next connection continues from what the last one left, refilled by the time between", async () => {
    const { time, memory, budgets, spend } = setup();
    const first: BudgetHolder = { budget: await budgets.restore(FP, undefined) };
    expect(spend(first, 100)).toBe(40);
    time.advance(100); // 2 tokens back
    await budgets.release(FP, "conn-1", first.budget as NonNullable<BudgetHolder["budget"]>);
    expect(memory.size).toBe(1);
    time.advance(400); // 8 more while no connection holds the key
    const second: BudgetHolder = { budget: await budgets.restore(FP, undefined) };
    expect(spend(second, 100)).toBe(10);
    expect(memory.size).toBe(0); // taken, not copied
  });

  it("a key seen for the first time, or longer ago than one refill period, starts full", async () => {
    const { time, budgets, spend } = setup();
    expect(spend({ budget: await budgets.restore(FP, undefined) }, 100)).toBe(40);
    const spent = { budget: budgets.fresh() };
    spend(spent, 40);
    await budgets.release(FP, "conn-1", spent.budget);
    time.advance(budgets.policy.refillMs);
    expect(spend({ budget: await budgets.restore(FP, undefined) }, 100)).toBe(40);
  });

  it("a connection replaced on the same process hands its budget over: the old one can spend no more", async () => {
    const { budgets, spend } = setup();
    const old: BudgetHolder = { budget: budgets.fresh() };
    expect(spend(old, 30)).toBe(30);
    const replacement: BudgetHolder = { budget: budgets.handOver(old) };
    expect(old.budget).toBeUndefined();
    expect(budgets.take(old.budget)).toBe(false);
    expect(spend(replacement, 100)).toBe(10);
  });

  it("a connection replaced on another process: the replacement waits for the budget it saves on its way out", async () => {
    const { memory, budgets, spend } = setup();
    // An older budget of the key, saved by a connection before the replaced one, does not count.
    await memory.save(FP, "conn-0", 40, 2_000);
    const restoring = budgets.restore(FP, "conn-1");
    await memory.save(FP, "conn-1", 3, 2_000);
    expect(spend({ budget: await restoring }, 100)).toBe(3);
  });

  it("a store that fails gives a fresh budget, never a failed registration", async () => {
    const { budgets, spend } = setup(failing);
    const holder = { budget: await budgets.restore(FP, undefined) };
    expect(spend(holder, 100)).toBe(40);
    await expect(budgets.release(FP, "conn-1", budgets.fresh())).resolves.toBeUndefined();
  });

  it("a failing store is reported in a line a second, each line counting the failures it stands for", async () => {
    const lines: { msg: string; suppressed: number }[] = [];
    const recording = pino({ level: "warn" }, { write: (line: string) => lines.push(JSON.parse(line) as { msg: string; suppressed: number }) });
    const time = clock();
    const budgets = new MessageBudgets({ perSec: 20, burst: 40, store: failing, logger: recording, now: time.now });
    // A stop of 1,000 connections with the store out of reach, then one more a second later.
    await Promise.all(Array.from({ length: 1_000 }, (_, i) => budgets.release(`fp-${i}`, `conn-${i}`, budgets.fresh())));
    await budgets.restore(FP, undefined);
    time.advance(1_000);
    await budgets.release(FP, "conn-last", budgets.fresh());
    expect(lines.map((line) => [line.msg, line.suppressed])).toEqual([
      ["could not save a message budget", 0],
      ["could not restore a message budget; fresh budget", 0],
      ["could not save a message budget", 999],
    ]);
  });
});

describe("MemoryBudgetStore", () => {
  it("forgets a budget once its TTL has passed, and drops expired ones as it saves", async () => {
    const time = clock();
    const store = new MemoryBudgetStore(time.now);
    await store.save("a", "conn-a", 1, 1_000);
    time.advance(500);
    await store.save("b", "conn-b", 2, 1_000);
    time.advance(499);
    expect(await store.take("a")).toEqual({ tokens: 1, ageMs: 999, connectionId: "conn-a" });
    await store.save("a", "conn-a2", 1, 1_000);
    time.advance(1_001);
    expect(await store.take("a")).toBeUndefined();
    await store.save("c", "conn-c", 3, 1_000);
    expect(store.size).toBe(1); // b expired and was dropped
  });

  it("a key saved again outlives its earlier save's expiry, across many expiries", async () => {
    const time = clock();
    const store = new MemoryBudgetStore(time.now);
    await store.save("k", "conn-1", 1, 1_000);
    for (let index = 0; index < 300; index++) await store.save(`old-${index}`, `conn-old-${index}`, 1, 1_000);
    time.advance(900);
    await store.save("k", "conn-2", 2, 1_000);
    for (let index = 0; index < 300; index++) await store.save(`new-${index}`, `conn-new-${index}`, 1, 1_000);
    time.advance(101);
    await store.save("x", "conn-x", 3, 1_000);
    // Every old-* expired with k's first save; k's second save, the new-* and x are kept.
    expect(store.size).toBe(302);
    expect(await store.take("k")).toEqual({ tokens: 2, ageMs: 101, connectionId: "conn-2" });
    expect(await store.take("old-0")).toBeUndefined();
    expect(await store.take("new-299")).toMatchObject({ tokens: 1, connectionId: "conn-new-299" });
  });

  it("a save replaces what was kept, and a hand-over take ignores another connection's budget", async () => {
    const time = clock();
    const store = new MemoryBudgetStore(time.now);
    await store.save("k", "conn-1", 1, 1_000);
    await store.save("k", "conn-2", 2, 1_000);
    expect(await store.take("k", { from: "conn-1", waitMs: 0 })).toBeUndefined();
    expect(await store.take("k", { from: "conn-2", waitMs: 0 })).toMatchObject({ tokens: 2, connectionId: "conn-2" });
  });

  it("close resolves waiting takes with nothing", async () => {
    const store = new MemoryBudgetStore(() => 0);
    const waiting = store.take("k", { from: "conn-1", waitMs: 60_000 });
    await store.close();
    expect(await waiting).toBeUndefined();
  });
});
