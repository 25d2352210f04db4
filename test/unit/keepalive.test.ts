import { beforeEach, describe, expect, it } from "vitest";
import { Keepalive, type KeepalivePeer } from "../../src/transport/keepalive.ts";
import { FakeClock } from "../helpers/fake-clock.ts";

const PING_INTERVAL_MS = 200;
const PONG_WAIT_MS = 600;

/** A connection that records what the keepalive did to it; `onPing` plays the client's side. */
class FakePeer implements KeepalivePeer {
  lastSeenMs = Number.NaN;
  /** Clock times of the pings it received. */
  readonly pings: number[] = [];
  /** Clock times at which it was terminated (never more than one). */
  readonly terminated: number[] = [];

  constructor(
    private readonly clock: FakeClock,
    private readonly onPing: () => void = () => undefined,
  ) {}

  ping(): void {
    this.pings.push(this.clock.now);
    this.onPing();
  }

  terminate(): void {
    this.terminated.push(this.clock.now);
  }
}

let clock: FakeClock;
let keepalive: Keepalive<FakePeer>;

beforeEach(() => {
  clock = new FakeClock();
  keepalive = new Keepalive<FakePeer>({ pingIntervalMs: PING_INTERVAL_MS, pongWaitMs: PONG_WAIT_MS, now: () => clock.now, setTimer: clock.setTimer });
  keepalive.start();
});

/** A peer that answers every ping with a pong `delayMs` later, as a client's WebSocket does. */
function answering(delayMs: number): FakePeer {
  const peer: FakePeer = new FakePeer(clock, () => {
    if (delayMs === 0) keepalive.seen(peer);
    else clock.setTimer(() => keepalive.seen(peer), delayMs);
  });
  return peer;
}

describe("Keepalive (ping_interval 200ms, pong_wait 600ms)", () => {
  it("pings every watched peer once per interval, the first one interval after start", () => {
    const [a, b] = [answering(0), answering(10)];
    keepalive.watch(a);
    clock.advance(50);
    keepalive.watch(b);
    clock.advance(PING_INTERVAL_MS - 51);
    expect([a.pings, b.pings]).toEqual([[], []]);
    clock.advance(1);
    expect([a.pings, b.pings]).toEqual([[200], [200]]);
    clock.advance(5 * PING_INTERVAL_MS);
    const rounds = [200, 400, 600, 800, 1_000, 1_200];
    expect([a.pings, b.pings]).toEqual([rounds, rounds]);
    expect([a.terminated, b.terminated]).toEqual([[], []]);
  });

  it("terminates a silent peer exactly when pong_wait has passed since it connected, once, and pings it no more", () => {
    const silent = new FakePeer(clock);
    keepalive.watch(silent);
    clock.advance(PONG_WAIT_MS - 1);
    expect(silent.terminated).toEqual([]);
    clock.advance(1);
    expect(silent.terminated).toEqual([PONG_WAIT_MS]);
    expect(silent.pings).toEqual([200, 400]);
    clock.advance(10 * PONG_WAIT_MS);
    expect(silent.terminated).toEqual([PONG_WAIT_MS]);
    expect(silent.pings).toEqual([200, 400]);
    expect(keepalive.size).toBe(0);
  });

  it("terminates a peer exactly pong_wait after its last sign of life, also between ping rounds", () => {
    const peer = new FakePeer(clock);
    keepalive.watch(peer);
    clock.advance(250);
    keepalive.seen(peer); // a message, between the rounds at 200 and 400
    clock.advance(PONG_WAIT_MS - 1);
    expect(peer.terminated).toEqual([]);
    clock.advance(1);
    expect(peer.terminated).toEqual([250 + PONG_WAIT_MS]);
  });

  it("terminates a peer that stops answering pong_wait after its last pong", () => {
    let answers = true;
    const peer: FakePeer = new FakePeer(clock, () => {
      if (answers) clock.setTimer(() => keepalive.seen(peer), 30);
    });
    keepalive.watch(peer);
    clock.advance(1_000); // pongs at 230, ..., 1_030 (for the ping at 1_000)
    answers = false;
    clock.advance(1_030 + PONG_WAIT_MS - 1 - 1_000);
    expect(peer.terminated).toEqual([]);
    clock.advance(1);
    expect(peer.terminated).toEqual([1_030 + PONG_WAIT_MS]);
  });

  it("keeps a peer that answers pings, even late, for as long as it does", () => {
    const [prompt, late] = [answering(0), answering(PONG_WAIT_MS - PING_INTERVAL_MS - 1)];
    keepalive.watch(prompt);
    keepalive.watch(late);
    clock.advance(100 * PONG_WAIT_MS);
    expect([prompt.terminated, late.terminated]).toEqual([[], []]);
    expect(prompt.pings).toHaveLength((100 * PONG_WAIT_MS) / PING_INTERVAL_MS);
    expect(late.pings).toHaveLength((100 * PONG_WAIT_MS) / PING_INTERVAL_MS);
  });

  it("keeps a peer that never answers pings but sends messages more often than pong_wait", () => {
    const chatty = new FakePeer(clock);
    keepalive.watch(chatty);
    for (let i = 0; i < 50; i++) {
      clock.advance(PONG_WAIT_MS - 1);
      keepalive.seen(chatty);
    }
    expect(chatty.terminated).toEqual([]);
    expect(chatty.pings.length).toBe(Math.floor((50 * (PONG_WAIT_MS - 1)) / PING_INTERVAL_MS));
    // And once it falls silent, it goes pong_wait later.
    const last = clock.now;
    clock.advance(PONG_WAIT_MS);
    expect(chatty.terminated).toEqual([last + PONG_WAIT_MS]);
  });

  it("a silent peer among many answering ones goes alone, on two timers at most whatever the number of peers", () => {
    keepalive.stop();
    let live = 0;
    let most = 0;
    // The clock's timers also hold the fake clients' pongs: count the keepalive's own.
    const counted = (callback: () => void, ms: number): (() => void) => {
      let pending = true;
      most = Math.max(most, ++live);
      const cancel = clock.setTimer(() => {
        pending = false;
        live--;
        callback();
      }, ms);
      return () => {
        if (pending) live--;
        pending = false;
        cancel();
      };
    };
    keepalive = new Keepalive<FakePeer>({ pingIntervalMs: PING_INTERVAL_MS, pongWaitMs: PONG_WAIT_MS, now: () => clock.now, setTimer: counted });
    keepalive.start();
    const healthy = Array.from({ length: 100 }, (_, i) => answering(i % 50));
    for (const peer of healthy) keepalive.watch(peer);
    clock.advance(70);
    const silent = new FakePeer(clock);
    keepalive.watch(silent);
    clock.advance(5 * PONG_WAIT_MS);
    expect(silent.terminated).toEqual([70 + PONG_WAIT_MS]);
    expect(healthy.filter((peer) => peer.terminated.length > 0)).toEqual([]);
    expect(most).toBeLessThanOrEqual(2);
  });

  it("an unwatched peer (its connection closed) is neither pinged nor terminated", () => {
    const gone = new FakePeer(clock);
    keepalive.watch(gone);
    clock.advance(PING_INTERVAL_MS);
    keepalive.unwatch(gone);
    clock.advance(10 * PONG_WAIT_MS);
    expect(gone.pings).toEqual([200]);
    expect(gone.terminated).toEqual([]);
  });

  it("stop() cancels every timer and is safe twice; start() again resumes the rounds", () => {
    const silent = new FakePeer(clock);
    keepalive.watch(silent);
    clock.advance(PING_INTERVAL_MS * 2 + 1);
    keepalive.stop();
    keepalive.stop();
    expect(clock.pending).toBe(0);
    clock.advance(10 * PONG_WAIT_MS);
    expect(silent.terminated).toEqual([]);
    keepalive.start();
    keepalive.start();
    clock.advance(PING_INTERVAL_MS);
    expect(silent.terminated).toEqual([clock.now]);
    expect(clock.pending).toBe(1);
  });

  it("refuses a pong_wait not longer than ping_interval", () => {
    const setTimer = clock.setTimer;
    expect(() => new Keepalive({ pingIntervalMs: 200, pongWaitMs: 200, now: () => 0, setTimer })).toThrow(RangeError);
    expect(() => new Keepalive({ pingIntervalMs: 0, pongWaitMs: 200, now: () => 0, setTimer })).toThrow(RangeError);
  });
});
