import { describe, expect, it } from "vitest";
import { BanList } from "../../src/limits/bans.ts";
import { normalizeAddress } from "../../src/trust/client-address.ts";
import type { Ban } from "../../src/backends/state-store.ts";
import { gate, settle } from "../helpers/core-harness.ts";

const ban = (kind: Ban["kind"], value: string, createdAt: number, expiresAt: number, id = `${kind}-${value}-${expiresAt}`): Ban => ({
  id,
  kind,
  value,
  reason: "",
  createdAt,
  expiresAt,
});

describe("normalizeAddress", () => {
  it.each([
    ["127.0.0.2", "127.0.0.2"],
    ["::ffff:127.0.0.2", "127.0.0.2"],
    ["::FFFF:7F00:2", "127.0.0.2"],
    ["0:0:0:0:0:ffff:c0a8:101", "192.168.1.1"],
    ["::1", "::1"],
    ["2001:DB8:0:0:0:0:0:1", "2001:db8::1"],
    ["2001:db8::1", "2001:db8::1"],
    ["fe80::1%eth0", "fe80::1"],
  ])("%s -> %s", (address, normal) => {
    expect(normalizeAddress(address)).toBe(normal);
  });

  it.each(["", "localhost", "1.2.3", "127.0.0.256", "127.000.0.1", "::g", "[::1]", " 127.0.0.1"])("%j is no address", (text) => {
    expect(normalizeAddress(text)).toBeUndefined();
  });
});

describe("BanList", () => {
  const clock = { now: 1_000 };
  const list = (bans: Ban[] = []) => new BanList({ store: { listBans: async () => bans }, now: () => clock.now });

  it("bans a fingerprint and an address until their expiry by the clock, whatever form the address takes", () => {
    clock.now = 1_000;
    const bans = list();
    expect(bans.fingerprintBanned("fp-a")).toBe(false);
    expect(bans.addressBanned("127.0.0.2")).toBe(false);
    bans.replace([ban("fingerprint", "fp-a", 1_000, 5_000), ban("ip", "127.0.0.2", 1_000, 3_000), ban("ip", "2001:db8::1", 1_000, 3_000)]);
    expect(bans.fingerprintBanned("fp-a")).toBe(true);
    expect(bans.fingerprintBanned("fp-b")).toBe(false);
    expect(bans.addressBanned("127.0.0.2")).toBe(true);
    expect(bans.addressBanned("::ffff:127.0.0.2")).toBe(true);
    expect(bans.addressBanned("2001:DB8::0:1")).toBe(true);
    expect(bans.addressBanned("127.0.0.3")).toBe(false);
    expect(bans.addressBanned(undefined)).toBe(false);
    expect(bans.addressBanned("not an address")).toBe(false);
    clock.now = 2_999;
    expect(bans.addressBanned("127.0.0.2")).toBe(true);
    clock.now = 3_000;
    expect(bans.addressBanned("127.0.0.2")).toBe(false);
    expect(bans.fingerprintBanned("fp-a")).toBe(true);
    clock.now = 5_000;
    expect(bans.fingerprintBanned("fp-a")).toBe(false);
  });

  it("with several bans of one value, the latest expiry counts", () => {
    clock.now = 1_000;
    const bans = list();
    bans.replace([ban("fingerprint", "fp-a", 1_000, 9_000), ban("fingerprint", "fp-a", 1_001, 2_000)]);
    clock.now = 5_000;
    expect(bans.fingerprintBanned("fp-a")).toBe(true);
  });

  it("reads the store with the clock's time; a failed read keeps the list and is reported", async () => {
    clock.now = 7_000;
    const asked: number[] = [];
    const errors: unknown[] = [];
    let fail = false;
    const bans = new BanList({
      store: {
        listBans: async (now) => {
          asked.push(now);
          if (fail) throw new Error("down");
          return [ban("ip", "10.0.0.1", 7_000, 9_000)];
        },
      },
      now: () => clock.now,
      onError: (error) => errors.push(error),
    });
    await bans.refresh();
    expect(asked).toEqual([7_000]);
    expect(bans.addressBanned("10.0.0.1")).toBe(true);
    fail = true;
    await expect(bans.refresh()).resolves.toBeUndefined();
    expect(errors).toHaveLength(1);
    expect(bans.addressBanned("10.0.0.1")).toBe(true);
    expect(bans.bans).toHaveLength(1);
  });

  it("a refresh asked during a read waits for one more read, shared by every call made meanwhile", async () => {
    clock.now = 1_000;
    const held = gate();
    let reads = 0;
    let current: Ban[] = [];
    const bans = new BanList({
      store: {
        listBans: async () => {
          reads++;
          const answer = current;
          if (reads === 1) await held.promise;
          return answer;
        },
      },
      now: () => clock.now,
    });
    const first = bans.refresh();
    await settle();
    // A ban made while the first read is under way: that read does not have it.
    current = [ban("fingerprint", "fp-a", 1_000, 9_000)];
    const second = bans.refresh();
    const third = bans.refresh();
    expect(third).toBe(second);
    held.open();
    await first;
    await second;
    expect(reads).toBe(2);
    expect(bans.fingerprintBanned("fp-a")).toBe(true);
  });
});
