import type { ProgressUpdate } from "../load/protocol.ts";

/**
 * The live display on stderr. On a terminal one status line is redrawn in place; otherwise
 * (CI logs, pipes) a line is printed when the phase changes, so logs stay short.
 */
export class ProgressDisplay {
  private readonly tty: boolean;
  private prefix = "";
  private status = "";
  private lastPhase = "";
  private runStart = 0;

  constructor(private readonly stream: NodeJS.WriteStream = process.stderr) {
    this.tty = stream.isTTY === true;
  }

  /** A new run starts: `[3/24] signal ws/sdp round 1/3 server`. */
  startRun(prefix: string): void {
    this.prefix = prefix;
    this.lastPhase = "";
    this.runStart = performance.now();
    this.show("starting target");
  }

  update(update: ProgressUpdate): void {
    const parts = [update.phase];
    if (update.done !== undefined) {
      const fmt = (value: number): string => (update.unit === "s" || !Number.isInteger(value) ? value.toFixed(1) : value.toLocaleString("en-US"));
      parts.push(update.total !== undefined ? `${fmt(update.done)}/${fmt(update.total)}${update.unit === "s" ? " s" : ""}` : fmt(update.done));
    }
    if (update.rate !== undefined && Number.isFinite(update.rate)) parts.push(`${Math.round(update.rate).toLocaleString("en-US")} ${update.unit ?? "/s"}`);
    if (this.tty || update.phase !== this.lastPhase) this.show(parts.join("  "));
    this.lastPhase = update.phase;
  }

  /** Prints a permanent line (a finished run, a warning) above the status line. */
  log(line: string): void {
    if (this.tty) this.stream.write(`\r\x1b[2K${line}\n`);
    else this.stream.write(`${line}\n`);
    if (this.tty && this.status !== "") this.draw();
  }

  /** Elapsed seconds of the current run. */
  get elapsedSeconds(): number {
    return (performance.now() - this.runStart) / 1000;
  }

  clear(): void {
    if (this.tty) this.stream.write("\r\x1b[2K");
    this.status = "";
  }

  private show(text: string): void {
    this.status = text;
    if (this.tty) this.draw();
    else this.stream.write(`${this.prefix}  ${text}\n`);
  }

  private draw(): void {
    const line = `${this.prefix}  ${this.status}  (${this.elapsedSeconds.toFixed(0)} s)`;
    const width = this.stream.columns ?? 120;
    this.stream.write(`\r\x1b[2K${line.length > width - 1 ? line.slice(0, width - 1) : line}`);
  }
}
