import type { Clock } from "../core/context.ts";

/**
 * Runs `callback` on every tick of the wall clock that is a multiple of `periodMs` (ms since the
 * epoch), from the next one on, until the result is called. Each timer is set from the clock anew:
 * a callback run late shortens the wait for the next tick rather than pushing every later one back,
 * one run early (a timer's clock and the wall clock differ by a few ms) does not run twice for its
 * tick, and ticks missed altogether are skipped. Processes of one machine with the same period
 * thus keep running within a few ms of each other, however long they run.
 */
export function onClockTicks(clock: Clock, periodMs: number, callback: () => void): () => void {
  const nextTickAfter = (ms: number): number => (Math.floor(ms / periodMs) + 1) * periodMs;
  let due = nextTickAfter(clock.now());
  let stopped = false;
  let cancel = (): void => undefined;
  const schedule = (): void => {
    cancel = clock.setTimer(fire, Math.max(0, due - clock.now()));
  };
  const fire = (): void => {
    if (stopped) return;
    callback();
    due += periodMs;
    const now = clock.now();
    if (due <= now) due = nextTickAfter(now);
    schedule();
  };
  schedule();
  return () => {
    stopped = true;
    cancel();
  };
}
