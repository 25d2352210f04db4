import type { Logger } from "../observability/logger.ts";

/** 0: the shutdown finished within its deadline; 1: it was cut (deadline, second signal, lost primary). */
export type ExitCode = 0 | 1;

/** Runs `callback` once, `ms` from now; the result cancels it. */
export type SetTimer = (callback: () => void, ms: number) => () => void;

/**
 * Timers of the process's own clock. They keep the process alive: a shutdown whose close waits on
 * nothing that holds the event loop (a promise no I/O will settle) must still reach its deadline and
 * exit 1, not end with 0 when the loop runs dry.
 */
export const processTimer: SetTimer = (callback, ms) => {
  const timer = setTimeout(callback, ms);
  return () => clearTimeout(timer);
};

export interface ShutdownOptions {
  /** shutdown_timeout: how long the whole shutdown may take, in ms from its start. */
  readonly deadlineMs: number;
  /**
   * Stops the process's work gracefully: drains what can be drained and closes the rest. Resolves
   * with 1 when part of it was cut on the way (a cluster worker that had to be killed), else 0 or
   * nothing. A rejection counts as cut.
   */
  readonly close: () => Promise<ExitCode | void>;
  /** Ends at once what is still running, before an exit that cuts the shutdown (the primary SIGKILLs its workers). */
  readonly abort?: () => void;
  /** Ends the process (process.exit). Called exactly once. */
  readonly exit: (code: ExitCode) => void;
  readonly logger: Pick<Logger, "info" | "warn" | "error">;
  /** Default: processTimer. Unit tests give a fake clock's. */
  readonly setTimer?: SetTimer;
  /** Milliseconds, for the durations logged. Default: Date.now. */
  readonly now?: () => number;
}

/**
 * How one process stops, whatever its role (single process, cluster primary, cluster worker): one
 * deadline for the whole shutdown, one exit.
 *
 * - `begin` starts the graceful close; the process exits 0 when it finishes within `deadlineMs`,
 *   and 1 (after `abort`) when the deadline comes first. Later calls change nothing.
 * - `signal` is a stop signal: the first begins the shutdown (if `begin` has not), the second ends
 *   the process at once (`abort`, exit 1): whoever sends it twice wants it gone now. Only signals
 *   count: a worker told to stop by its primary, then signalled by its process group (which
 *   reached the primary too), has had one signal, in whichever order the two arrived.
 * - `limit` bounds what is left of the shutdown (beginning it if need be): a worker whose primary
 *   is gone closes what it can within a short bound, then exits.
 *
 * The exit never waits on `close`: a close that never settles is cut by the deadline.
 */
export class Shutdown {
  private readonly setTimer: SetTimer;
  private readonly now: () => number;
  private startedAt: number | undefined;
  private ended = false;
  private signals = 0;
  private readonly cancels: (() => void)[] = [];

  constructor(private readonly options: ShutdownOptions) {
    this.setTimer = options.setTimer ?? processTimer;
    this.now = options.now ?? Date.now;
  }

  /** True from `begin` on. */
  get stopping(): boolean {
    return this.startedAt !== undefined;
  }

  /** Starts the graceful shutdown, `reason` naming what asked for it; later calls do nothing. */
  begin(reason: string): void {
    if (this.startedAt !== undefined || this.ended) return;
    this.startedAt = this.now();
    this.options.logger.info({ reason, shutdownTimeoutMs: this.options.deadlineMs }, "shutting down");
    this.cancels.push(this.setTimer(() => this.end(1, "shutdown_timeout reached"), this.options.deadlineMs));
    let closing: Promise<ExitCode | void>;
    try {
      closing = this.options.close();
    } catch (error) {
      closing = Promise.reject(error);
    }
    closing.then(
      (code) => this.end(code ?? 0, code === 1 ? "stopped; part of it was cut" : "stopped"),
      (error: unknown) => {
        this.options.logger.error({ err: error }, "shutdown failed");
        this.end(1, "shutdown failed");
      },
    );
  }

  /** A stop signal: the first begins the shutdown (unless it has begun), the second ends the process at once. */
  signal(name: string): void {
    this.signals++;
    if (this.signals === 1) this.begin(name);
    else this.end(1, `${name} during shutdown`);
  }

  /** Ends the process at most `ms` from now (exit 1 if the close has not finished by then), beginning the shutdown if it has not begun. */
  limit(ms: number, reason: string): void {
    this.begin(reason);
    if (this.ended) return;
    this.cancels.push(this.setTimer(() => this.end(1, reason), ms));
  }

  private end(code: ExitCode, why: string): void {
    if (this.ended) return;
    this.ended = true;
    for (const cancel of this.cancels) cancel();
    if (code !== 0) this.options.abort?.();
    const fields = { code, ms: this.startedAt === undefined ? 0 : this.now() - this.startedAt };
    if (code === 0) this.options.logger.info(fields, why);
    else this.options.logger.warn(fields, why);
    this.options.exit(code);
  }
}
