import fc from "fast-check";

/**
 * Runs one fuzz property with fast-check under a fixed seed and a time limit, and turns the
 * result into a report that names the seed, the replay path and the shrunk counterexample.
 * Never rejects: the suite's tests await the outcome and assert on it.
 */

export interface PropertyOptions<T> {
  readonly seed: number;
  readonly numRuns: number;
  /** The whole check, shrinking included, stops here; a check cut short without a failure is reported incomplete. */
  readonly timeLimitMs: number;
  readonly show: (value: T) => string;
  /** A counterexample path from an earlier report (with the same seed), to replay just that case. */
  readonly path?: string;
  /** How to replay a counterexample path, for the report. */
  readonly replay: (path: string) => string;
}

export interface PropertyOutcome {
  readonly name: string;
  /** No counterexample in the runs that were made. */
  readonly passed: boolean;
  /** All `numRuns` runs were made (false when the time limit interrupted a passing check). */
  readonly complete: boolean;
  readonly report: string;
  /** Executions of the property, shrinking included. */
  readonly runs: number;
  readonly ms: number;
}

export async function checkProperty<T>(name: string, arbitrary: fc.Arbitrary<T>, predicate: (value: T) => Promise<void>, options: PropertyOptions<T>): Promise<PropertyOutcome> {
  const started = Date.now();
  let runs = 0;
  const counted = async (value: T): Promise<void> => {
    runs++;
    await predicate(value);
  };
  try {
    const property: fc.IAsyncProperty<[T]> = fc.asyncProperty(arbitrary, counted);
    const parameters: fc.Parameters<[T]> = {
      seed: options.seed,
      numRuns: options.numRuns,
      ...(options.path === undefined ? {} : { path: options.path, endOnFailure: true }),
      plugins: [fc.interruptAfterTimeLimit(options.timeLimitMs)],
    };
    const details = await fc.check(property, parameters);
    const ms = Date.now() - started;
    if (!details.failed) {
      const complete = details.numRuns >= options.numRuns;
      const note = complete ? "" : `, interrupted by the ${options.timeLimitMs}ms time limit before the other ${options.numRuns - details.numRuns}`;
      return { name, passed: true, complete, report: `${name}: ${details.numRuns} runs passed in ${ms}ms (seed ${options.seed})${note}`, runs, ms };
    }
    if (details.counterexample === null) {
      return { name, passed: false, complete: false, report: `${name}: no run completed within the ${options.timeLimitMs}ms time limit (seed ${options.seed})`, runs, ms };
    }
    const [counterexample] = details.counterexample;
    const error = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
    const report = [
      `${name}: failed at run ${details.numRuns} of ${options.numRuns}; shrunk ${details.numShrinks} time(s)${details.interrupted ? " (shrinking stopped by the time limit)" : ""}`,
      `seed ${options.seed}, path ${details.counterexamplePath}; replay: ${options.replay(details.counterexamplePath)}`,
      `counterexample: ${options.show(counterexample)}`,
      `failure: ${error}`,
    ].join("\n");
    return { name, passed: false, complete: false, report, runs, ms };
  } catch (error) {
    return { name, passed: false, complete: false, report: `${name}: the check itself failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`, runs, ms: Date.now() - started };
  }
}
