/** Median of the finite values; NaN when there are none. */
export function median(values: readonly number[]): number {
  const finite = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (finite.length === 0) return Number.NaN;
  const middle = finite.length >> 1;
  return finite.length % 2 === 1 ? (finite[middle] as number) : ((finite[middle - 1] as number) + (finite[middle] as number)) / 2;
}

/** The q-quantile (0..1) of sorted values, nearest rank. */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank] as number;
}

/**
 * Latency samples with bounded memory: the first `capacity` values are kept, then reservoir
 * sampling keeps a uniform sample of everything seen.
 */
export class Samples {
  private readonly values: Float64Array;
  private seen = 0;

  constructor(capacity = 200_000) {
    this.values = new Float64Array(capacity);
  }

  add(value: number): void {
    const capacity = this.values.length;
    if (this.seen < capacity) this.values[this.seen] = value;
    else {
      const slot = Math.floor(Math.random() * (this.seen + 1));
      if (slot < capacity) this.values[slot] = value;
    }
    this.seen++;
  }

  get count(): number {
    return this.seen;
  }

  /** p50 and p99 in the unit the samples were added in. */
  percentiles(): { p50: number; p99: number } {
    const sorted = this.values.slice(0, Math.min(this.seen, this.values.length)).sort();
    return { p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99) };
  }
}
