import { AggregatorRegistry } from "prom-client";
import { describe, expect, it } from "vitest";
import { noMetrics, type GaugeSource } from "../../src/observability/metrics.ts";
import { LATENCY_BUCKETS, PrometheusMetrics } from "../../src/observability/prometheus-metrics.ts";

const options = {
  requestTypes: ["register", "signal", "ping"],
  messageTypes: ["registered", "signal", "pong", "error", "ok"],
  errorCodes: [400, 429, 503],
  redis: false,
};

/** One sample of a scrape's text: `name{labels} value`, labels in any order. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split("\n")) {
    if (line.startsWith("#") || line === "") continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (match === null || match[1] !== name) continue;
    const found: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) found[key as string] = value as string;
    if (JSON.stringify(Object.entries(found).sort()) === JSON.stringify(Object.entries(labels).sort())) return Number(match[3]);
  }
  return undefined;
}

const source = (overrides: Partial<GaugeSource> = {}): GaugeSource => ({
  connections: () => ({ ws: 2, "socket.io": 3 }),
  peers: () => 4,
  redisUp: () => undefined,
  ...overrides,
});

describe("noMetrics", () => {
  it("reads no clock and records nothing", () => {
    expect(noMetrics.now()).toBe(0);
    expect(() => {
      noMetrics.requestReceived("signal");
      noMetrics.requestHandled("signal", 0);
      noMetrics.messageSentIn('2["signal",{}]', 3);
      noMetrics.track(source());
    }).not.toThrow();
  });
});

describe("PrometheusMetrics", () => {
  it("counts by the known types and codes, anything else as other", async () => {
    const metrics = new PrometheusMetrics(options);
    for (const type of ["signal", "signal", "ping", "__proto__", "constructor", undefined]) metrics.requestReceived(type);
    metrics.errorReplied(429);
    metrics.errorReplied(418);
    metrics.rateLimited();
    metrics.slowConsumer();
    metrics.slowConsumer();
    const { body } = await metrics.scrape();
    expect(sample(body, "peer_server_messages_received_total", { type: "signal" })).toBe(2);
    expect(sample(body, "peer_server_messages_received_total", { type: "ping" })).toBe(1);
    expect(sample(body, "peer_server_messages_received_total", { type: "register" })).toBe(0);
    expect(sample(body, "peer_server_messages_received_total", { type: "other" })).toBe(3);
    expect(sample(body, "peer_server_messages_received_total", { type: "__proto__" })).toBeUndefined();
    expect(sample(body, "peer_server_errors_total", { code: "429" })).toBe(1);
    expect(sample(body, "peer_server_errors_total", { code: "other" })).toBe(1);
    expect(sample(body, "peer_server_rate_limited_total")).toBe(1);
    expect(sample(body, "peer_server_slow_consumer_disconnects_total")).toBe(2);
  });

  it("reads a sent type inside encoded text without slicing it, by its exact length", async () => {
    const metrics = new PrometheusMetrics(options);
    metrics.messageSent("pong");
    metrics.messageSentIn('2["signal",{"from":"a"}]', 3);
    metrics.messageSentIn('2["signals",{}]', 3);
    metrics.messageSentIn('2["sign",{}]', 3);
    metrics.messageSentIn('2["error"', 3);
    metrics.messageSentIn('2["unterminated', 3);
    const { body } = await metrics.scrape();
    expect(sample(body, "peer_server_messages_sent_total", { type: "pong" })).toBe(1);
    expect(sample(body, "peer_server_messages_sent_total", { type: "signal" })).toBe(1);
    expect(sample(body, "peer_server_messages_sent_total", { type: "error" })).toBe(1);
    expect(sample(body, "peer_server_messages_sent_total", { type: "other" })).toBe(3);
  });

  it("reads the gauges from the tracked source at each scrape; redis_up only with Redis, lowest over workers", async () => {
    const metrics = new PrometheusMetrics(options);
    let { body } = await metrics.scrape();
    expect(sample(body, "peer_server_peers")).toBe(0);
    metrics.track(source());
    ({ body } = await metrics.scrape());
    expect(sample(body, "peer_server_connections", { transport: "ws" })).toBe(2);
    expect(sample(body, "peer_server_connections", { transport: "socket.io" })).toBe(3);
    expect(sample(body, "peer_server_peers")).toBe(4);
    expect(body).not.toContain("peer_server_redis_up");

    const withRedis = new PrometheusMetrics({ ...options, redis: true });
    let up = true;
    withRedis.track(source({ redisUp: () => up }));
    expect(sample((await withRedis.scrape()).body, "peer_server_redis_up")).toBe(1);
    up = false;
    expect(sample((await withRedis.scrape()).body, "peer_server_redis_up")).toBe(0);
  });

  it("stamps time as a small positive integer: the wall clock's microseconds modulo 2^30, plus 1", () => {
    const metrics = new PrometheusMetrics(options);
    const stamp = metrics.now();
    expect(Number.isInteger(stamp)).toBe(true);
    expect(stamp).toBeGreaterThanOrEqual(1);
    expect(stamp).toBeLessThanOrEqual(2 ** 30);
    const wall = ((Date.now() * 1000) % 2 ** 30) + 1;
    // Within a second of the wall clock, the wrap aside.
    expect(Math.min(Math.abs(stamp - wall), 2 ** 30 - Math.abs(stamp - wall))).toBeLessThan(1_000_000);
  });

  it("keeps histograms in cumulative buckets with their sum and count; a negative time (clock skew) counts as 0", async () => {
    const metrics = new PrometheusMetrics(options);
    const now = metrics.now();
    // Stamps are microseconds.
    metrics.requestHandled("signal", now - 300); // ~0.0003 s (plus the test's own time)
    metrics.requestHandled("signal", now - 2_000_000 + 2 ** 30); // ~2 s, across the stamps' wrap
    metrics.requestHandled("ping", now + 10_000_000); // from the future: 0
    metrics.signalDelivered(now - 20_000);
    const { body } = await metrics.scrape();
    const name = "peer_server_request_duration_seconds";
    expect(sample(body, `${name}_count`, { type: "signal" })).toBe(2);
    expect(sample(body, `${name}_bucket`, { type: "signal", le: "0.00005" })).toBe(0);
    expect(sample(body, `${name}_bucket`, { type: "signal", le: "1" })).toBe(1);
    expect(sample(body, `${name}_bucket`, { type: "signal", le: "2.5" })).toBe(2);
    expect(sample(body, `${name}_bucket`, { type: "signal", le: "+Inf" })).toBe(2);
    expect(sample(body, `${name}_sum`, { type: "signal" })).toBeGreaterThan(2);
    expect(sample(body, `${name}_bucket`, { type: "ping", le: String(LATENCY_BUCKETS[0]) })).toBe(1);
    expect(sample(body, `${name}_sum`, { type: "ping" })).toBe(0);
    expect(sample(body, `${name}_count`, { type: "register" })).toBe(0);
    expect(sample(body, "peer_server_signal_delivery_seconds_count")).toBe(1);
    expect(sample(body, "peer_server_signal_delivery_seconds_bucket", { le: "5" })).toBe(1);
  });

  it("includes prom-client's default process metrics, with the process labels given", async () => {
    const metrics = new PrometheusMetrics({ ...options, processLabels: { worker: "3" } });
    const { body, contentType } = await metrics.scrape();
    expect(contentType).toContain("text/plain");
    expect(sample(body, "process_cpu_user_seconds_total", { worker: "3" })).toBeGreaterThanOrEqual(0);
    expect(sample(body, "nodejs_heap_size_total_bytes", { worker: "3" })).toBeGreaterThan(0);
    // Our own metrics carry no process label: the primary sums them over the workers.
    expect(sample(body, "peer_server_peers")).toBe(0);
  });

  it("aggregates over workers as the cluster primary does: own metrics summed, default metrics kept apart", async () => {
    const workers = [0, 1].map((index) => {
      const metrics = new PrometheusMetrics({ ...options, redis: true, processLabels: { worker: String(index) } });
      metrics.track(source({ connections: () => ({ ws: index + 1 }), peers: () => 10 * (index + 1), redisUp: () => index === 0 }));
      metrics.requestReceived("signal");
      metrics.signalDelivered(metrics.now() - 1_000);
      return metrics;
    });
    const aggregated = AggregatorRegistry.aggregate(await Promise.all(workers.map((metrics) => metrics.registry.getMetricsAsJSON())));
    const text = await aggregated.metrics();
    expect(sample(text, "peer_server_connections", { transport: "ws" })).toBe(3);
    expect(sample(text, "peer_server_peers")).toBe(30);
    expect(sample(text, "peer_server_redis_up")).toBe(0);
    expect(sample(text, "peer_server_messages_received_total", { type: "signal" })).toBe(2);
    expect(sample(text, "peer_server_signal_delivery_seconds_count")).toBe(2);
    expect(sample(text, "peer_server_signal_delivery_seconds_bucket", { le: "+Inf" })).toBe(2);
    expect(sample(text, "nodejs_heap_size_total_bytes", { worker: "0" })).toBeGreaterThan(0);
    expect(sample(text, "nodejs_heap_size_total_bytes", { worker: "1" })).toBeGreaterThan(0);
  });
});
