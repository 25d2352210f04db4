import { describe, expect, it } from "vitest";
import { fingerprintOf } from "../../../src/core/alias.ts";
import { BanList } from "../../../src/limits/bans.ts";
import type { Ban } from "../../../src/backends/state-store.ts";
import { CoreHarness, errorCode } from "../../helpers/core-harness.ts";

/** A harness whose hub checks the bans of a BanList on the harness's clock. */
function withBans(): { core: CoreHarness; bans: BanList; ban: (kind: Ban["kind"], value: string, durationMs?: number) => void } {
  const holder: { core?: CoreHarness } = {};
  const list: Ban[] = [];
  const bans = new BanList({ store: { listBans: async () => list }, now: () => holder.core?.clock.now ?? 0 });
  const harness = (holder.core = new CoreHarness({ bans }));
  const ban = (kind: Ban["kind"], value: string, durationMs = 60_000): void => {
    const now = harness.clock.now;
    list.push({ id: `ban-${list.length}`, kind, value, reason: "", createdAt: now, expiresAt: now + durationMs });
    bans.replace([...list]);
  };
  return { core: harness, bans, ban };
}

describe("bans in the core", () => {
  it("a banned fingerprint's register is refused with 403 and the connection stays unregistered", async () => {
    const { core, ban } = withBans();
    ban("fingerprint", fingerprintOf("key-a"));
    const peer = core.connect();
    const reply = await core.request(peer, "register", { payload: { public_key: "key-a" } });
    expect(reply.body).toEqual({ payload: { code: 403, message: "banned", ref: "register" } });
    expect(await core.store.resolvePeer(fingerprintOf("key-a"))).toBeUndefined();
    expect(peer.connection.closeCode).toBeUndefined();
    expect(errorCode(await core.request(peer, "register", { payload: { public_key: "key-b" } }))).toBeUndefined();
  });

  it("a ban stops counting at its expiry by the clock, before the list is read again", async () => {
    const { core, ban } = withBans();
    ban("fingerprint", fingerprintOf("key-a"), 10_000);
    expect(errorCode(await core.request(core.connect(), "register", { payload: { public_key: "key-a" } }))).toBe(403);
    core.clock.advance(10_000);
    expect((await core.request(core.connect(), "register", { payload: { public_key: "key-a" } })).type).toBe("registered");
  });

  it("closeBanned closes the connections a ban covers, by fingerprint or by address, with 403 and 4004; the others stay", async () => {
    const { core, ban } = withBans();
    const watcher = await core.peer("key-w", "lobby");
    const target = await core.peer("key-a", "lobby");
    const fromBannedAddress = await core.peer("key-b", "lobby");
    fromBannedAddress.connection.remoteAddress = "::ffff:127.0.0.2";
    const unregistered = core.connect();
    unregistered.connection.remoteAddress = "127.0.0.2";
    expect(core.hub.moderation.closeBanned()).toBe(0);

    ban("fingerprint", target.fingerprint);
    ban("ip", "127.0.0.2");
    expect(core.hub.moderation.closeBanned()).toBe(3);
    for (const closed of [target, fromBannedAddress, unregistered]) {
      expect(closed.connection.closeCode).toBe(4004);
      expect(closed.connection.of("error").at(-1)?.body).toEqual({ payload: { code: 403, message: "banned", close_code: 4004 } });
    }
    expect(watcher.connection.closeCode).toBeUndefined();
    await core.hub.close(target.session);
    await core.hub.close(fromBannedAddress.session);
    // They left the shared state as any closed connection does.
    expect(watcher.connection.of("peer_left").map((message) => message.body["from"]).sort()).toEqual([target.fingerprint, fromBannedAddress.fingerprint].sort());
    expect(await core.store.resolvePeer(target.fingerprint)).toBeUndefined();
  });
});

describe("disconnect", () => {
  it("closes a peer of this process with 403 and close 4004, the reason as its message; its namespaces are told", async () => {
    const core = new CoreHarness();
    const watcher = await core.peer("key-w", "lobby");
    const target = await core.peer("key-a", "lobby");
    const details = await core.hub.moderation.disconnect(target.fingerprint, "spamming the lobby");
    expect(details).toMatchObject({ fingerprint: target.fingerprint, alias: target.alias, connectionId: target.connection.id, nodeId: "node-test" });
    expect(target.connection.closeCode).toBe(4004);
    expect(target.connection.of("error").at(-1)?.body).toEqual({ payload: { code: 403, message: "spamming the lobby", close_code: 4004 } });
    await core.hub.close(target.session);
    expect(watcher.connection.of("peer_left")).toEqual([{ type: "peer_left", body: { from: target.fingerprint, namespace: "lobby" } }]);
    expect(core.delivery.closedElsewhere).toEqual([]);
  });

  it("says why by default, asks the other processes for a peer connected elsewhere, and is undefined for an unknown peer", async () => {
    const core = new CoreHarness();
    const local = await core.peer("key-a");
    await core.hub.moderation.disconnect(local.fingerprint);
    expect(local.connection.of("error").at(-1)?.body).toEqual({ payload: { code: 403, message: "disconnected by the operator", close_code: 4004 } });
    const remote = fingerprintOf("key-r");
    await core.store.registerPeer({ fingerprint: remote, connectionId: "remote-1", nodeId: "node-2", alias: undefined, aliasCandidates: ["far-away-01"], meta: {}, verified: false });
    expect(await core.hub.moderation.disconnect(remote)).toMatchObject({ nodeId: "node-2" });
    expect(core.delivery.closedElsewhere).toEqual(["remote-1"]);
    expect(await core.hub.moderation.disconnect(fingerprintOf("key-nobody"))).toBeUndefined();
  });
});
