import { EventEmitter } from "node:events";
import { describe, expect, it } from "vitest";
import { AddressHold, AddressQuota } from "../../src/limits/address-quota.ts";
import { FakeClock } from "../helpers/fake-clock.ts";

const quotaWith = (clock: FakeClock, options: { maxConnections?: number; ratePerSec?: number; burst?: number } = {}): AddressQuota =>
  new AddressQuota({ maxConnections: options.maxConnections ?? 1_000, ratePerSec: options.ratePerSec ?? 20, burst: options.burst ?? 100, now: () => clock.now });

describe("connections per address", () => {
  it("counts open connections up to the cap; a release makes room again; addresses are apart", () => {
    const clock = new FakeClock();
    const quota = quotaWith(clock, { maxConnections: 3 });
    expect([quota.take("a"), quota.take("a"), quota.take("a")]).toEqual(["ok", "ok", "ok"]);
    expect(quota.take("a")).toBe("count");
    expect(quota.take("b")).toBe("ok");
    quota.release("a");
    expect(quota.openOf("a")).toBe(2);
    expect(quota.take("a")).toBe("ok");
    expect(quota.take("a")).toBe("count");
  });

  it("allows the burst at once, then the rate, refilled continuously; a refused attempt spends nothing", () => {
    const clock = new FakeClock();
    const quota = quotaWith(clock, { ratePerSec: 20, burst: 100 });
    for (let i = 0; i < 100; i++) expect(quota.take("a")).toBe("ok");
    expect(quota.take("a")).toBe("rate");
    clock.advance(49);
    expect(quota.take("a")).toBe("rate");
    clock.advance(1);
    expect(quota.take("a")).toBe("ok");
    expect(quota.take("a")).toBe("rate");
    clock.advance(1_000);
    for (let i = 0; i < 20; i++) expect(quota.take("a")).toBe("ok");
    expect(quota.take("a")).toBe("rate");
    // Releasing a connection gives no new-connection budget back.
    for (let i = 0; i < 10; i++) quota.release("a");
    expect(quota.take("a")).toBe("rate");
  });

  it("a refusal for the cap keeps the rate budget", () => {
    const clock = new FakeClock();
    const quota = quotaWith(clock, { maxConnections: 1, ratePerSec: 1, burst: 2 });
    expect(quota.take("a")).toBe("ok");
    for (let i = 0; i < 5; i++) expect(quota.take("a")).toBe("count");
    quota.release("a");
    expect(quota.take("a")).toBe("ok");
  });

  it("forgets addresses that hold nothing once their budget is full again", () => {
    const clock = new FakeClock();
    const quota = quotaWith(clock, { ratePerSec: 10, burst: 10 });
    for (let i = 0; i < 500; i++) quota.take(`10.0.${i >> 8}.${i & 255}`);
    for (let i = 0; i < 499; i++) quota.release(`10.0.${i >> 8}.${i & 255}`);
    expect(quota.size).toBe(500);
    clock.advance(1_000);
    quota.take("other");
    // The one still open stays, with the newcomer.
    expect(quota.size).toBe(2);
    expect(quota.openOf("10.0.1.243")).toBe(1);
  });
});

describe("address hold", () => {
  it("releases exactly once: on close of what it is bound to, or by hand", () => {
    const released: string[] = [];
    const socket = new EventEmitter();
    const hold = new AddressHold("a", (address) => released.push(address));
    hold.bindTo(socket);
    socket.emit("close");
    socket.emit("close");
    hold.release();
    expect(released).toEqual(["a"]);
  });

  it("moves from a socket to a session: the socket's close no longer releases it", () => {
    const released: string[] = [];
    const socket = new EventEmitter();
    const session = new EventEmitter();
    const hold = new AddressHold("a", (address) => released.push(address));
    hold.bindTo(socket);
    hold.bindTo(session);
    socket.emit("close");
    expect(released).toEqual([]);
    session.emit("close");
    expect(released).toEqual(["a"]);
    expect(socket.listenerCount("close") + session.listenerCount("close")).toBe(0);
  });
});
