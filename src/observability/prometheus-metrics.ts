import { performance } from "node:perf_hooks";
import { collectDefaultMetrics, Registry, type Metric } from "prom-client";
import type { GaugeSource, Metrics } from "./metrics.ts";

/** What a process's Prometheus recorder counts by, and how its process metrics are told apart. */
export interface PrometheusOptions {
  /** Client request types (the core's): the `type` label of received messages and request durations. */
  readonly requestTypes: readonly string[];
  /** Server message types: the `type` label of sent messages. */
  readonly messageTypes: readonly string[];
  /** Error codes: the `code` label of error replies. */
  readonly errorCodes: readonly number[];
  /** This process uses Redis: only then is `peer_server_redis_up` reported. */
  readonly redis: boolean;
  /**
   * Labels of prom-client's default process metrics (a cluster worker's index), so that each
   * process keeps its own series once the primary has aggregated the workers' scrapes.
   */
  readonly processLabels?: Readonly<Record<string, string>>;
}

/** The label value of anything outside a known set. */
export const OTHER = "other";

/** Upper bounds of the latency histograms, in seconds (50 µs to 5 s; above: the +Inf bucket). */
export const LATENCY_BUCKETS: readonly number[] = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
/** LATENCY_BUCKETS in whole microseconds: the hot path compares small integers only. */
const BUCKET_MICROS: readonly number[] = LATENCY_BUCKETS.map((seconds) => Math.round(seconds * 1e6));

/** Metrics.now() stamps are microseconds modulo this (2^30 µs: about 18 minutes), plus 1. */
const STAMP_RANGE = 2 ** 30;
/**
 * x mod STAMP_RANGE is `x & STAMP_MASK` for an integer x below 2^53: the bitwise operator keeps x's
 * low 32 bits (ToInt32), of which the mask keeps 30, with no floating-point remainder.
 */
const STAMP_MASK = STAMP_RANGE - 1;
/** The wall clock at this process's start (performance.timeOrigin) in microseconds; performance.now() advances it. */
const ORIGIN_MICROS = Math.round(performance.timeOrigin * 1000);

type LabelValues = Record<string, string | number>;
interface Sample {
  value: number;
  labels: LabelValues;
  metricName?: string;
}

/**
 * The Prometheus recorder of one process (metrics_enabled). The hot path only increments numbers
 * in typed arrays, indexed by a label value's place in its known set: measured with prom-client's
 * own labelled metrics, a counter's inc() cost about 100 ns and a histogram's observe() 350-500 ns
 * (each builds a label hash string), several times a signal's share of the budget. The arrays are
 * turned into prom-client metrics when scraped (`registry`), beside prom-client's default process
 * metrics.
 */
export class PrometheusMetrics implements Metrics {
  /** This process's metrics, ours and prom-client's defaults; a cluster worker hands it to the primary's scrapes. */
  readonly registry = new Registry();
  private readonly requestTypes: LabelSet;
  private readonly messageTypes: LabelSet;
  private readonly errorCodes: ReadonlyMap<number, number>;
  private readonly received: Float64Array;
  private readonly sent: Float64Array;
  private readonly errors: Float64Array;
  private rateLimitedCount = 0;
  private slowConsumerCount = 0;
  private readonly requestDurations: Latencies;
  private readonly signalDelivery = new Latencies(1);
  private source: GaugeSource | undefined;

  constructor(options: PrometheusOptions) {
    this.requestTypes = new LabelSet(options.requestTypes);
    this.messageTypes = new LabelSet(options.messageTypes);
    this.errorCodes = new Map(options.errorCodes.map((code, index) => [code, index]));
    const codeNames = [...options.errorCodes.map(String), OTHER];
    this.received = new Float64Array(this.requestTypes.names.length);
    this.sent = new Float64Array(this.messageTypes.names.length);
    this.errors = new Float64Array(codeNames.length);
    this.requestDurations = new Latencies(this.requestTypes.names.length);

    const typeNames = this.requestTypes.names;
    const register = (name: string, help: string, type: ComputedMetric["type"], read: () => Sample[], aggregator: ComputedMetric["aggregator"] = "sum"): void => {
      // Registry.registerMetric takes any object with a name and get(), as prom-client registers
      // its own aggregated metrics; its typings name only its metric classes.
      this.registry.registerMetric(new ComputedMetric(name, help, type, aggregator, read) as unknown as Metric);
    };
    register("peer_server_connections", "Open connections by transport, registered or not (what max_peers counts).", "gauge", () =>
      Object.entries(this.source?.connections() ?? {}).map(([transport, value]) => ({ value, labels: { transport } })),
    );
    register("peer_server_peers", "Registered peers.", "gauge", () => [{ value: this.source?.peers() ?? 0, labels: {} }]);
    if (options.redis) {
      register(
        "peer_server_redis_up",
        "1 while Redis is reachable, else 0; over a machine's workers, the lowest.",
        "gauge",
        () => {
          const up = this.source?.redisUp();
          return up === undefined ? [] : [{ value: up ? 1 : 0, labels: {} }];
        },
        "min",
      );
    }
    register("peer_server_messages_received_total", "Client requests received, by type (a dialect's by the core type it becomes).", "counter", () => labelled(this.received, "type", typeNames));
    register("peer_server_messages_sent_total", "Server messages handed to connections, by type.", "counter", () => labelled(this.sent, "type", this.messageTypes.names));
    register("peer_server_errors_total", "Error replies, by code.", "counter", () => labelled(this.errors, "code", codeNames));
    register("peer_server_rate_limited_total", "Messages refused for their peer's message budget (error 429).", "counter", () => [{ value: this.rateLimitedCount, labels: {} }]);
    register("peer_server_slow_consumer_disconnects_total", "Connections closed for not reading their messages (close 4002).", "counter", () => [
      { value: this.slowConsumerCount, labels: {} },
    ]);
    register("peer_server_request_duration_seconds", "From a request's receipt to its direct reply (or the end of its handling), by type.", "histogram", () =>
      this.requestDurations.samples("peer_server_request_duration_seconds", "type", typeNames),
    );
    register("peer_server_signal_delivery_seconds", "From a signal's or relay's receipt to its hand-off to the target's connection, on whichever process holds it.", "histogram", () =>
      this.signalDelivery.samples("peer_server_signal_delivery_seconds"),
    );
    collectDefaultMetrics(options.processLabels === undefined ? { register: this.registry } : { register: this.registry, labels: options.processLabels });
  }

  now(): number {
    return ((ORIGIN_MICROS + Math.floor(performance.now() * 1000)) & STAMP_MASK) + 1;
  }

  requestReceived(type: string | undefined): void {
    increment(this.received, this.requestTypes.of(type));
  }

  requestHandled(type: string | undefined, receivedAt: number, endedAt = 0): void {
    this.requestDurations.observe(this.requestTypes.of(type), elapsed(receivedAt, endedAt > 0 ? endedAt : this.now()));
  }

  errorReplied(code: number): void {
    increment(this.errors, this.errorCodes.get(code) ?? this.errors.length - 1);
  }

  rateLimited(): void {
    this.rateLimitedCount++;
  }

  messageSent(type: string): void {
    increment(this.sent, this.messageTypes.of(type));
  }

  messageSentIn(text: string, start: number): void {
    increment(this.sent, this.messageTypes.in(text, start));
  }

  slowConsumer(): void {
    this.slowConsumerCount++;
  }

  signalDelivered(receivedAt: number): number {
    const now = this.now();
    this.signalDelivery.observe(0, elapsed(receivedAt, now));
    return now;
  }

  track(source: GaugeSource): void {
    this.source = source;
  }

  /** The Prometheus text of this process alone (a single process's scrape). */
  async scrape(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}

/**
 * A bounded set of label values, each with its index; anything else gets the index of `other`,
 * the last one.
 */
class LabelSet {
  readonly names: readonly string[];
  private readonly index: ReadonlyMap<string, number>;
  /** The indexes of the known values of each length: a value inside a text is found without slicing it. */
  private readonly byLength: (readonly number[] | undefined)[] = [];
  private readonly other: number;

  constructor(known: readonly string[]) {
    this.names = [...known, OTHER];
    this.other = known.length;
    this.index = new Map(known.map((name, index) => [name, index]));
    known.forEach((name, index) => {
      this.byLength[name.length] = [...(this.byLength[name.length] ?? []), index];
    });
  }

  of(name: string | undefined): number {
    return name === undefined ? this.other : (this.index.get(name) ?? this.other);
  }

  /** The value that starts at `text[start]` and ends before the next `"`. */
  in(text: string, start: number): number {
    const end = text.indexOf('"', start);
    const candidates = end < 0 ? undefined : this.byLength[end - start];
    if (candidates === undefined) return this.other;
    for (let i = 0; i < candidates.length; i++) {
      const index = candidates[i] as number;
      if (text.startsWith(this.names[index] as string, start)) return index;
    }
    return this.other;
  }
}

/**
 * Histograms over LATENCY_BUCKETS, one row per label value: counts per bucket and the sum, in plain
 * arrays, in microseconds; seconds only when scraped.
 */
class Latencies {
  /** rows x (bounds + 1) counts, not cumulative; the last column is above every bound. */
  private readonly counts: Float64Array;
  /** Per row, the sum of the observations in microseconds. */
  private readonly sums: Float64Array;
  private readonly width = LATENCY_BUCKETS.length + 1;

  constructor(rows: number) {
    this.counts = new Float64Array(rows * this.width);
    this.sums = new Float64Array(rows);
  }

  /** One observation in `row`, in whole microseconds (at least 0). */
  observe(row: number, micros: number): void {
    let bucket = 0;
    while (bucket < BUCKET_MICROS.length && micros > (BUCKET_MICROS[bucket] as number)) bucket++;
    increment(this.counts, row * this.width + bucket);
    this.sums[row] = (this.sums[row] as number) + micros;
  }

  /** Prometheus's histogram samples (cumulative `_bucket`s, `_sum`, `_count`), with the row's label if there are several rows. */
  samples(name: string, label?: string, values?: readonly string[]): Sample[] {
    const samples: Sample[] = [];
    for (let row = 0; row < this.sums.length; row++) {
      const labels: LabelValues = label === undefined || values === undefined ? {} : { [label]: values[row] as string };
      let cumulative = 0;
      for (let bucket = 0; bucket < this.width; bucket++) {
        cumulative += this.counts[row * this.width + bucket] as number;
        samples.push({ value: cumulative, labels: { ...labels, le: bucket < LATENCY_BUCKETS.length ? (LATENCY_BUCKETS[bucket] as number) : "+Inf" }, metricName: `${name}_bucket` });
      }
      samples.push({ value: (this.sums[row] as number) / 1e6, labels, metricName: `${name}_sum` }, { value: cumulative, labels, metricName: `${name}_count` });
    }
    return samples;
  }
}

/**
 * Microseconds from the stamp `from` to the stamp `to`, the wrap of the stamps undone; a negative
 * time (clock skew between machines) is 0. A small integer, like the stamps: nothing to box.
 */
function elapsed(from: number, to: number): number {
  let micros = to - from;
  if (micros < -STAMP_RANGE / 2) micros += STAMP_RANGE;
  else if (micros > STAMP_RANGE / 2) micros -= STAMP_RANGE;
  return micros > 0 ? micros : 0;
}

/** Adds 1 at `index` (always within the array: indexes come from the label sets). */
function increment(counts: Float64Array, index: number): void {
  counts[index] = (counts[index] as number) + 1;
}

/** One counter or gauge sample per label value. */
function labelled(values: Float64Array, label: string, names: readonly string[]): Sample[] {
  return names.map((name, index) => ({ value: values[index] as number, labels: { [label]: name } }));
}

/**
 * A metric whose samples are computed when scraped: what prom-client's Registry reads of a metric
 * (name, help, type, aggregator for the cluster's aggregation, and get()).
 */
class ComputedMetric {
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: "counter" | "gauge" | "histogram",
    readonly aggregator: "sum" | "min",
    private readonly read: () => Sample[],
  ) {}

  get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: Sample[] }> {
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values: this.read() });
  }

  /** Registry.resetMetrics calls it; these samples are not prom-client's to reset. */
  reset(): void {}
}
