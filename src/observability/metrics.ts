/**
 * What a server process records for its metrics. The hub, the transports and delivery call it on
 * the hot path, so every method is synchronous, allocates nothing and costs a few increments at
 * most; createServer injects it (the Prometheus recorder when `metrics_enabled` is true, else
 * `noMetrics`, which does nothing at all).
 *
 * Types and codes are label values: an implementation keeps to a known, bounded set and counts
 * anything else as `other`, so a client can never create a series.
 */
export interface Metrics {
  /**
   * A time stamp: the wall clock in microseconds modulo 2^30 (about 18 minutes), plus 1. A small
   * integer, so that V8 stores it in the queue entry of a request without allocating a number box,
   * and it travels between processes as a short number; durations are taken modulo the same range,
   * which is far above any delivery time. The wall clock is the one at this process's start
   * advanced by the monotonic clock: the processes of one machine agree on it (unless the system
   * clock was stepped between their starts); other machines differ by their clocks' skew. Never 0:
   * 0, which `noMetrics` returns, means that nothing is measured and nothing travels.
   */
  now(): number;
  /** A client request reached the core (a dialect's, as the core type it became); `type` undefined: unknown. */
  requestReceived(type: string | undefined): void;
  /**
   * The core sent the direct reply to a request received at `receivedAt` (a now() stamp), or
   * finished one that has none. `endedAt`, when above 0, is a stamp already taken at that moment
   * (a local signal's hand-off, from signalDelivered): the clock is not read again.
   */
  requestHandled(type: string | undefined, receivedAt: number, endedAt?: number): void;
  /** An error reply with this code. */
  errorReplied(code: number): void;
  /** A message refused for its peer's message budget (error 429). */
  rateLimited(): void;
  /** A message of this type was handed to one connection. */
  messageSent(type: string): void;
  /**
   * Like messageSent, for a type that sits in an encoded message: the JSON string whose first
   * character is `text[start]`, up to the next `"`. Nothing is sliced out of `text`.
   */
  messageSentIn(text: string, start: number): void;
  /** A connection was closed for not reading its messages (close 4002). */
  slowConsumer(): void;
  /**
   * A signal or relay received at `receivedAt` (a now() stamp of whichever process received it)
   * was handed to its target's connection here. Returns the stamp of the hand-off (0 from noMetrics).
   */
  signalDelivered(receivedAt: number): number;
  /** Where the gauges are read at each scrape; createServer calls it once it is wired. */
  track(source: GaugeSource): void;
}

/** The figures a scrape reads from the running server. */
export interface GaugeSource {
  /** Open connections of this process by transport (`ws`, `socket.io`, each dialect served). */
  connections(): Readonly<Record<string, number>>;
  /** Registered peers on this process. */
  peers(): number;
  /** Redis as this process's backends report it: true up, false down; undefined without Redis. */
  redisUp(): boolean | undefined;
}

const nothing = (): void => undefined;

/** Metrics off: every call does nothing, and now() is 0 so that no time is read or carried. */
export const noMetrics: Metrics = {
  now: () => 0,
  requestReceived: nothing,
  requestHandled: nothing,
  errorReplied: nothing,
  rateLimited: nothing,
  messageSent: nothing,
  messageSentIn: nothing,
  slowConsumer: nothing,
  signalDelivered: () => 0,
  track: nothing,
};
