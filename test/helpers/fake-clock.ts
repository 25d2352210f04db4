import type { SetTimer } from "../../src/http/request-deadlines.ts";

/** A clock for unit tests that only moves when told to: timers fire in deadline order, never on their own. */
export class FakeClock {
  now = 0;
  private timers: { at: number; seq: number; callback: () => void }[] = [];
  private seq = 0;

  readonly setTimer: SetTimer = (callback, ms) => {
    const timer = { at: this.now + ms, seq: this.seq++, callback };
    this.timers.push(timer);
    return () => {
      this.timers = this.timers.filter((other) => other !== timer);
    };
  };

  /** Timers scheduled and neither fired nor cancelled. */
  get pending(): number {
    return this.timers.length;
  }

  /** Moves the clock forward, running every timer that falls due on the way. */
  advance(ms: number): void {
    const until = this.now + ms;
    for (;;) {
      const due = this.timers.filter((timer) => timer.at <= until).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (due === undefined) break;
      this.timers = this.timers.filter((timer) => timer !== due);
      this.now = due.at;
      due.callback();
    }
    this.now = until;
  }
}
