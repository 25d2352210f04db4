import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import { afterEach, describe, expect, it } from "vitest";
import type { BudgetStore } from "../../src/backends/budget-store.ts";
import { ADDRESS_REGISTRATIONS, REGISTRATION_BURST, type RegistrationLimits, type RegistrationRefusal } from "../../src/backends/registration-limiter.ts";

/** One process's handle on a deployment's limits. */
export interface LimitsHandle {
  budgets: BudgetStore;
  /** Per client address at the default rate (ADDRESS_REGISTRATIONS), and per key. */
  registrations: RegistrationLimits;
}

/**
 * A deployment's limits as two processes see them: `open()` gives another process's handle on
 * the same backend (the same object in memory, another IPC link to one primary, another Redis
 * connection with the same key prefix). Each test opens a fresh deployment.
 */
export interface LimitsDeployment {
  open(): Promise<LimitsHandle>;
  close(): Promise<void>;
}

/**
 * The limits contract: the BudgetStore and the RegistrationLimiter of every mode (memory, the
 * cluster primary over IPC, Redis) must pass it. Real time, in short sleeps: Redis and another
 * process keep their own clocks.
 */
export function limitsContract(name: string, makeDeployment: () => Promise<LimitsDeployment>): void {
  describe(`limits contract: ${name}`, () => {
    let deployment: LimitsDeployment | undefined;
    afterEach(async () => {
      await deployment?.close();
      deployment = undefined;
    });
    const twoProcesses = async (): Promise<[LimitsHandle, LimitsHandle]> => {
      deployment = await makeDeployment();
      return [await deployment.open(), await deployment.open()];
    };
    const fingerprint = (): string => randomBytes(32).toString("hex");
    const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

    it("takes nothing for a key that saved nothing", async () => {
      const [a] = await twoProcesses();
      expect(await a.budgets.take(fingerprint())).toBeUndefined();
    });

    it("a budget saved by one process is taken by another, once, with its age", async () => {
      const [a, b] = await twoProcesses();
      const key = fingerprint();
      await a.budgets.save(key, "conn-1", 12.5, 5_000);
      await sleep(60);
      const taken = await b.budgets.take(key);
      expect(taken).toMatchObject({ tokens: 12.5, connectionId: "conn-1" });
      expect(taken?.ageMs).toBeGreaterThanOrEqual(40);
      expect(taken?.ageMs).toBeLessThan(2_000);
      expect(await a.budgets.take(key)).toBeUndefined();
    });

    it("a save replaces what was kept for the key; other keys are apart", async () => {
      const [a, b] = await twoProcesses();
      const [key, other] = [fingerprint(), fingerprint()];
      await a.budgets.save(key, "conn-1", 1, 5_000);
      await b.budgets.save(key, "conn-2", 2, 5_000);
      await a.budgets.save(other, "conn-3", 3, 5_000);
      expect(await a.budgets.take(key)).toMatchObject({ tokens: 2, connectionId: "conn-2" });
      expect(await b.budgets.take(other)).toMatchObject({ tokens: 3, connectionId: "conn-3" });
    });

    it("forgets a budget once its TTL has passed", async () => {
      const [a, b] = await twoProcesses();
      const key = fingerprint();
      await a.budgets.save(key, "conn-1", 0, 80);
      await sleep(200);
      expect(await b.budgets.take(key)).toBeUndefined();
    });

    it("a hand-over take waits for the budget of the connection it names, saved by another process", async () => {
      const [a, b] = await twoProcesses();
      const key = fingerprint();
      await a.budgets.save(key, "conn-0", 40, 5_000); // older: not the one wanted
      const started = performance.now();
      const taking = b.budgets.take(key, { from: "conn-1", waitMs: 2_000 });
      await sleep(50);
      await a.budgets.save(key, "conn-1", 7, 5_000);
      expect(await taking).toMatchObject({ tokens: 7, connectionId: "conn-1" });
      expect(performance.now() - started).toBeLessThan(1_000);
    });

    it("a hand-over take finds at once a budget already saved by that connection", async () => {
      const [a, b] = await twoProcesses();
      const key = fingerprint();
      await a.budgets.save(key, "conn-1", 4, 5_000);
      const started = performance.now();
      expect(await b.budgets.take(key, { from: "conn-1", waitMs: 2_000 })).toMatchObject({ tokens: 4 });
      expect(performance.now() - started).toBeLessThan(500);
    });

    it("a hand-over take gives up after its wait", async () => {
      const [a] = await twoProcesses();
      const started = performance.now();
      expect(await a.budgets.take(fingerprint(), { from: "conn-1", waitMs: 150 })).toBeUndefined();
      const waited = performance.now() - started;
      expect(waited).toBeGreaterThanOrEqual(120);
      expect(waited).toBeLessThan(1_000);
    });

    it(`allows ${REGISTRATION_BURST} registrations of a key at once across processes, refuses the next; other keys are apart`, async () => {
      const handles = await twoProcesses();
      const key = fingerprint();
      const verdicts: (RegistrationRefusal | undefined)[] = [];
      for (let i = 0; i <= REGISTRATION_BURST; i++) verdicts.push(await (handles[i % 2] as LimitsHandle).registrations.consume(undefined, key));
      expect(verdicts).toEqual([...Array.from({ length: REGISTRATION_BURST }, () => undefined), "key"]);
      expect(await handles[0].registrations.consume(undefined, fingerprint())).toBeUndefined();
    });

    it(`allows ${ADDRESS_REGISTRATIONS.burst} registrations from an address at once, whatever the keys, then refuses it without counting the key`, async () => {
      const handles = await twoProcesses();
      const address = `10.${randomBytes(3).join(".")}`;
      const verdicts: (RegistrationRefusal | undefined)[] = [];
      for (let i = 0; i <= ADDRESS_REGISTRATIONS.burst; i++) verdicts.push(await (handles[i % 2] as LimitsHandle).registrations.consume(address, fingerprint()));
      expect(verdicts).toEqual([...Array.from({ length: ADDRESS_REGISTRATIONS.burst }, () => undefined), "address"]);
      // A key refused for its address keeps its whole burst: from another address it registers REGISTRATION_BURST times.
      const key = fingerprint();
      expect(await handles[0].registrations.consume(address, key)).toBe("address");
      for (let i = 0; i < REGISTRATION_BURST; i++) expect(await (handles[i % 2] as LimitsHandle).registrations.consume(`${address}0`, key)).toBeUndefined();
      expect(await handles[1].registrations.consume(undefined, key)).toBe("key");
    });
  });
}
