import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config/load.ts";
import { Shutdown, type ExitCode } from "../../src/process/shutdown.ts";
import { configFiles } from "../helpers/config-files.ts";
import { FakeClock } from "../helpers/fake-clock.ts";

const DEADLINE_MS = 10_000;

/** A Shutdown on a fake clock whose close resolves when the test says. */
function harness(options: { close?: () => Promise<ExitCode | void> } = {}) {
  const clock = new FakeClock();
  const exits: ExitCode[] = [];
  const aborts: number[] = [];
  let closes = 0;
  let finishClose: (code?: ExitCode) => void = () => undefined;
  const logger = { info: () => undefined, warn: () => undefined, error: () => undefined };
  const shutdown = new Shutdown({
    deadlineMs: DEADLINE_MS,
    close:
      options.close ??
      (() => {
        closes++;
        return new Promise<ExitCode | void>((resolve) => (finishClose = resolve));
      }),
    abort: () => aborts.push(clock.now),
    exit: (code) => exits.push(code),
    logger,
    setTimer: clock.setTimer,
    now: () => clock.now,
  });
  return { clock, shutdown, exits, aborts, closes: () => closes, finishClose: (code?: ExitCode) => finishClose(code) };
}

/** Lets the promise callbacks of a settled close run. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe("Shutdown", () => {
  it("exits 0 once the close finishes within the deadline, and never later", async () => {
    const { clock, shutdown, exits, aborts, finishClose } = harness();
    shutdown.begin("SIGTERM");
    expect(shutdown.stopping).toBe(true);
    clock.advance(DEADLINE_MS - 1);
    finishClose();
    await settle();
    expect(exits).toEqual([0]);
    expect(aborts).toEqual([]);
    clock.advance(DEADLINE_MS);
    expect(exits).toEqual([0]);
    expect(clock.pending).toBe(0);
  });

  it("exits 1 at the deadline, after aborting what is left, when the close never settles", async () => {
    const { clock, shutdown, exits, aborts } = harness();
    shutdown.begin("SIGTERM");
    clock.advance(DEADLINE_MS - 1);
    expect(exits).toEqual([]);
    clock.advance(1);
    expect(exits).toEqual([1]);
    expect(aborts).toEqual([DEADLINE_MS]);
  });

  it("a close that finishes after the deadline changes nothing: one exit", async () => {
    const { clock, shutdown, exits, finishClose } = harness();
    shutdown.begin("SIGTERM");
    clock.advance(DEADLINE_MS);
    finishClose();
    await settle();
    expect(exits).toEqual([1]);
  });

  it("exits 1 when the close reports part of it cut, or fails", async () => {
    const cut = harness();
    cut.shutdown.begin("SIGTERM");
    cut.finishClose(1);
    await settle();
    expect(cut.exits).toEqual([1]);

    const failed = harness({ close: () => Promise.reject(new Error("boom")) });
    failed.shutdown.begin("SIGTERM");
    await settle();
    expect(failed.exits).toEqual([1]);

    const threw = harness({
      close: () => {
        throw new Error("boom");
      },
    });
    threw.shutdown.begin("SIGTERM");
    await settle();
    expect(threw.exits).toEqual([1]);
  });

  it("the first signal begins the shutdown; a second one during it ends the process at once with 1", () => {
    const { clock, shutdown, exits, aborts, closes } = harness();
    shutdown.signal("SIGTERM");
    expect(closes()).toBe(1);
    clock.advance(3_000);
    expect(exits).toEqual([]);
    shutdown.signal("SIGINT");
    expect(exits).toEqual([1]);
    expect(aborts).toEqual([3_000]);
    // The deadline timer is gone with it.
    clock.advance(DEADLINE_MS);
    expect(exits).toEqual([1]);
    expect(clock.pending).toBe(0);
  });

  it("only signals count: a stop message before the first signal does not make it the second", () => {
    const { clock, shutdown, exits, closes } = harness();
    shutdown.begin("the primary is stopping");
    shutdown.signal("SIGTERM");
    expect(closes()).toBe(1);
    expect(exits).toEqual([]);
    clock.advance(1_000);
    shutdown.signal("SIGTERM");
    expect(exits).toEqual([1]);
  });

  it("begin is idempotent: a stop message after the first signal does not count as a second signal", () => {
    const { clock, shutdown, exits, closes } = harness();
    shutdown.signal("SIGTERM");
    shutdown.begin("the primary is stopping");
    shutdown.begin("the primary is stopping");
    expect(closes()).toBe(1);
    expect(exits).toEqual([]);
    clock.advance(DEADLINE_MS);
    expect(exits).toEqual([1]);
  });

  it("limit bounds what is left of a shutdown under way, and begins one that had not begun", async () => {
    const underWay = harness();
    underWay.shutdown.begin("the primary is stopping");
    underWay.clock.advance(2_000);
    underWay.shutdown.limit(1_000, "the cluster primary is gone");
    underWay.clock.advance(999);
    expect(underWay.exits).toEqual([]);
    underWay.clock.advance(1);
    expect(underWay.exits).toEqual([1]);
    expect(underWay.clock.now).toBe(3_000);

    const idle = harness();
    idle.shutdown.limit(1_000, "the cluster primary is gone");
    expect(idle.closes()).toBe(1);
    idle.finishClose();
    await settle();
    expect(idle.exits).toEqual([0]);
    idle.clock.advance(DEADLINE_MS);
    expect(idle.exits).toEqual([0]);
  });

  it("a limit later than the deadline does not extend it", () => {
    const { clock, shutdown, exits } = harness();
    shutdown.begin("SIGTERM");
    clock.advance(DEADLINE_MS - 500);
    shutdown.limit(1_000, "the cluster primary is gone");
    clock.advance(500);
    expect(exits).toEqual([1]);
  });
});

describe("shutdown_timeout", () => {
  const { configFile } = configFiles("peer-shutdown-unit-");
  const load = (file: unknown, env: Record<string, string> = {}) => loadConfig({ path: file === undefined ? undefined : configFile(file), env });

  it("defaults to 10 s and reads a duration from the file or PEER_SHUTDOWN_TIMEOUT, the environment winning", () => {
    expect(load(undefined).shutdownTimeoutMs).toBe(10_000);
    expect(load({ shutdown_timeout: "1m30s" }).shutdownTimeoutMs).toBe(90_000);
    expect(load({ shutdown_timeout: 2_500 }).shutdownTimeoutMs).toBe(2_500);
    expect(load({ shutdown_timeout: "5s" }, { PEER_SHUTDOWN_TIMEOUT: "750ms" }).shutdownTimeoutMs).toBe(750);
  });

  it("a value that is not a positive duration stops start-up naming the key", () => {
    for (const value of ["soon", 0, -1]) {
      let problems: readonly string[] = [];
      try {
        load({ shutdown_timeout: value });
      } catch (error) {
        expect(error).toBeInstanceOf(ConfigError);
        problems = (error as ConfigError).problems;
      }
      expect(problems).toHaveLength(1);
      expect(problems[0]?.startsWith("shutdown_timeout")).toBe(true);
    }
  });
});
