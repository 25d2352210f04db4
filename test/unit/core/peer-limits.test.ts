import { describe, expect, it } from "vitest";
import { checkCriteriaSize, kickBanAt, peerLimitsOf } from "../../../src/core/peer-limits.ts";
import { ProtocolError } from "../../../src/protocol/errors.ts";
import { CoreHarness, errorCode, type Peer } from "../../helpers/core-harness.ts";

const refusal = (run: () => void): ProtocolError | undefined => {
  try {
    run();
    return undefined;
  } catch (error) {
    return error as ProtocolError;
  }
};

describe("checkCriteriaSize", () => {
  it("measures the criteria's JSON in UTF-8 bytes: at the bound passes, one byte more is 400 naming max_criteria_bytes", () => {
    // {"k":"…"} is 8 bytes around the value.
    expect(refusal(() => checkCriteriaSize({ k: "x".repeat(92) }, 100))).toBeUndefined();
    const over = refusal(() => checkCriteriaSize({ k: "x".repeat(93) }, 100));
    expect(over).toBeInstanceOf(ProtocolError);
    expect(over).toMatchObject({ code: 400, message: "criteria larger than max_criteria_bytes (100)" });
    // "é" is one character and two bytes: 46 of them are 92 bytes, 47 are 94.
    expect(refusal(() => checkCriteriaSize({ k: "é".repeat(46) }, 100))).toBeUndefined();
    expect(refusal(() => checkCriteriaSize({ k: "é".repeat(47) }, 100))?.code).toBe(400);
    expect(refusal(() => checkCriteriaSize({}, 2))).toBeUndefined();
  });
});

describe("kickBanAt and peerLimitsOf", () => {
  it("a kick at now bans until now + kick_ban; kick_ban 0 bans nothing", () => {
    expect(kickBanAt(1_000, 60_000)).toEqual({ now: 1_000, until: 61_000 });
    expect(kickBanAt(1_000, 0)).toBeUndefined();
  });

  it("takes the caps from the options", () => {
    const limits = peerLimitsOf({ maxScopesPerPeer: 64, maxRoomsPerPeer: 8, maxTicketsPerPeer: 8, maxCriteriaBytes: 1024, kickBanMs: 60_000 });
    expect(limits).toEqual({ caps: { maxScopes: 64, maxRooms: 8, maxTickets: 8 }, maxCriteriaBytes: 1024, kickBanMs: 60_000 });
  });
});

/** A room owned by `owner` with `members` in it. */
async function room(core: CoreHarness, owner: Peer, roomId: string, ...members: Peer[]): Promise<void> {
  expect((await core.request(owner, "create_room", { payload: { room_id: roomId } })).type).toBe("room_created");
  for (const member of members) expect((await core.request(member, "join_room", { payload: { room_id: roomId } })).type).toBe("peer_list");
}

describe("the kick ban in the core", () => {
  it("a kicked peer's join_room gets 403 until kick_ban has passed on the clock, then it is admitted", async () => {
    const core = new CoreHarness({ config: { kick_ban: "30s" } });
    const [owner, target] = [await core.peer("key-owner"), await core.peer("key-target")];
    await room(core, owner, "den", target);
    expect((await core.request(owner, "kick", { payload: { room_id: "den", fingerprint: target.fingerprint } })).type).toBe("ok");

    const refused = await core.request(target, "join_room", { payload: { room_id: "den" } });
    expect(refused.body).toEqual({ payload: { code: 403, message: "kicked from this room; try again later", ref: "join_room" } });
    expect(target.connection.rooms.has("ns:den")).toBe(false);
    expect(owner.connection.of("peer_joined")).toHaveLength(1);
    core.clock.advance(29_999);
    expect(errorCode(await core.request(target, "join_room", { payload: { room_id: "den" } }))).toBe(403);
    core.clock.advance(1);
    const admitted = await core.request(target, "join_room", { payload: { room_id: "den" } });
    expect(admitted).toMatchObject({ type: "peer_list", body: { payload: { total: 2 } } });
    expect(owner.connection.of("peer_joined")).toHaveLength(2);
  });

  it("kick_ban 0: the kicked peer may join again at once", async () => {
    const core = new CoreHarness({ config: { kick_ban: 0 } });
    const [owner, target] = [await core.peer("key-owner"), await core.peer("key-target")];
    await room(core, owner, "den", target);
    await core.request(owner, "kick", { payload: { room_id: "den", fingerprint: target.fingerprint } });
    expect((await core.request(target, "join_room", { payload: { room_id: "den" } })).type).toBe("peer_list");
  });
});

describe("caps in the core", () => {
  it("the scope cap counts joins, rooms joined and rooms created; the refused join leaves the connection outside", async () => {
    const core = new CoreHarness({ config: { max_scopes_per_peer: 2 } });
    const [host, peer] = [await core.peer("key-host"), await core.peer("key-peer", "lobby")];
    await room(core, host, "den");
    expect((await core.request(peer, "join_room", { payload: { room_id: "den" } })).type).toBe("peer_list");
    const refused = await core.request(peer, "join", { payload: { namespace: "other" } });
    expect(refused.body).toEqual({ payload: { code: 429, message: "max_scopes_per_peer (2) reached", ref: "join" } });
    expect(peer.connection.rooms.has("ns:other")).toBe(false);
    expect(errorCode(await core.request(peer, "create_room", { payload: { room_id: "mine" } }))).toBe(429);
    expect(await core.store.scopeExists("mine")).toBe(false);
    await core.request(peer, "leave", { payload: { namespace: "lobby" } });
    expect((await core.request(peer, "join", { payload: { namespace: "other" } })).type).toBe("peer_list");
  });

  it("match: criteria over max_criteria_bytes get 400 and queue nothing; the ticket cap gets 429", async () => {
    const core = new CoreHarness({ config: { max_criteria_bytes: 64, max_tickets_per_peer: 1 } });
    const peer = await core.peer("key-peer", "a", "b");
    const big = await core.request(peer, "match", { payload: { namespace: "a", group_size: 2, criteria: { k: "x".repeat(60) } } });
    expect(big.body).toEqual({ payload: { code: 400, message: "criteria larger than max_criteria_bytes (64)", ref: "match" } });
    expect(errorCode(await core.request(peer, "match_cancel", { payload: { namespace: "a" } }))).toBe(404);
    expect((await core.request(peer, "match", { payload: { namespace: "a", group_size: 2, criteria: { k: "x" } } })).body).toMatchObject({ payload: { status: "waiting" } });
    const capped = await core.request(peer, "match", { payload: { namespace: "b", group_size: 2, criteria: {} } });
    expect(capped.body).toEqual({ payload: { code: 429, message: "max_tickets_per_peer (1) reached", ref: "match" } });
    expect(errorCode(await core.request(peer, "match_cancel", { payload: { namespace: "b" } }))).toBe(404);
  });
});

describe("the defaults", () => {
  it("64 scopes, 8 rooms owned, 8 tickets waiting, 1,024 bytes of criteria, a 60 s kick ban", async () => {
    const core = new CoreHarness();
    const peer = await core.peer("key-peer");
    for (let index = 0; index < 56; index++) expect((await core.request(peer, "join", { payload: { namespace: `ns-${index}` } })).type).toBe("peer_list");
    for (let index = 0; index < 8; index++) expect((await core.request(peer, "create_room", { payload: { room_id: `room-${index}` } })).type).toBe("room_created");
    expect((await core.request(peer, "join", { payload: { namespace: "one-more" } })).body).toMatchObject({ payload: { code: 429, message: "max_scopes_per_peer (64) reached" } });
    await core.request(peer, "leave", { payload: { namespace: "ns-55" } });
    expect((await core.request(peer, "create_room", { payload: { room_id: "room-8" } })).body).toMatchObject({ payload: { code: 429, message: "max_rooms_per_peer (8) reached" } });

    for (let index = 0; index < 8; index++) {
      expect((await core.request(peer, "match", { payload: { namespace: `ns-${index}`, group_size: 2, criteria: {} } })).type).toBe("match");
    }
    expect((await core.request(peer, "match", { payload: { namespace: "ns-8", group_size: 2, criteria: {} } })).body).toMatchObject({ payload: { code: 429, message: "max_tickets_per_peer (8) reached" } });
    // {"k":"…"} is 8 bytes around the value: 1,016 characters make 1,024 bytes.
    expect((await core.request(peer, "match", { payload: { namespace: "ns-0", group_size: 2, criteria: { k: "x".repeat(1_016) } } })).type).toBe("match");
    expect(errorCode(await core.request(peer, "match", { payload: { namespace: "ns-0", group_size: 2, criteria: { k: "x".repeat(1_017) } } }))).toBe(400);

    const guest = await core.peer("key-guest");
    await core.request(guest, "join_room", { payload: { room_id: "room-0" } });
    await core.request(peer, "kick", { payload: { room_id: "room-0", fingerprint: guest.fingerprint } });
    core.clock.advance(59_999);
    expect(errorCode(await core.request(guest, "join_room", { payload: { room_id: "room-0" } }))).toBe(403);
    core.clock.advance(1);
    expect((await core.request(guest, "join_room", { payload: { room_id: "room-0" } })).type).toBe("peer_list");
  });
});
