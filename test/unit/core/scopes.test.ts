import { describe, expect, it } from "vitest";
import { CoreHarness, errorCode } from "../../helpers/core-harness.ts";

describe("kick", () => {
  it("the owner kicks a member: it gets kick and leaves the room; the others get peer_left", async () => {
    const core = new CoreHarness();
    const owner = await core.peer("key-owner");
    await core.request(owner, "create_room", { payload: { room_id: "den", max_size: 5 } });
    const [b, c] = [await core.peer("key-b"), await core.peer("key-c")];
    for (const peer of [b, c]) await core.request(peer, "join_room", { payload: { room_id: "den" } });

    expect((await core.request(owner, "kick", { payload: { room_id: "den", fingerprint: b.fingerprint } })).type).toBe("ok");
    expect(b.connection.of("kick")).toEqual([
      { type: "kick", body: { from: owner.fingerprint, payload: { room_id: "den", fingerprint: b.fingerprint }, ts: core.clock.now } },
    ]);
    expect(b.connection.rooms.has("ns:den")).toBe(false);
    const left = { type: "peer_left", body: { from: b.fingerprint, namespace: "den" } };
    expect(owner.connection.of("peer_left")).toEqual([left]);
    expect(c.connection.of("peer_left")).toEqual([left]);
    expect(b.connection.of("peer_left")).toEqual([]);
    expect(await core.store.roomInfo("den")).toMatchObject({ peer_count: 2, owner: owner.fingerprint });
  });

  it("only the owner may kick (403), only a member (404), only in an existing room (404)", async () => {
    const core = new CoreHarness();
    const owner = await core.peer("key-owner");
    await core.request(owner, "create_room", { payload: { room_id: "den" } });
    const b = await core.peer("key-b");
    await core.request(b, "join_room", { payload: { room_id: "den" } });
    const outsider = await core.peer("key-c");
    expect(errorCode(await core.request(b, "kick", { payload: { room_id: "den", fingerprint: owner.fingerprint } }))).toBe(403);
    expect(errorCode(await core.request(owner, "kick", { payload: { room_id: "den", fingerprint: outsider.fingerprint } }))).toBe(404);
    expect(errorCode(await core.request(owner, "kick", { payload: { room_id: "nope", fingerprint: b.fingerprint } }))).toBe(404);
    expect(core.delivery.of("kick")).toEqual([]);
  });
});

describe("rooms and namespaces", () => {
  it("create_room without an id generates room-<16 hex>; room_info describes it; join on a room id is 403", async () => {
    const core = new CoreHarness();
    const owner = await core.peer("key-owner");
    const created = await core.request(owner, "create_room");
    const roomId = (created.body["payload"] as { room_id: string }).room_id;
    expect(roomId).toMatch(/^room-[0-9a-f]{16}$/);
    expect(created.body).toEqual({ payload: { room_id: roomId, max_size: 20, owner: owner.fingerprint } });
    const other = await core.peer("key-b");
    expect(await core.request(other, "room_info", { payload: { room_id: roomId } })).toEqual({
      type: "room_info",
      body: { payload: { room_id: roomId, peer_count: 1, max_size: 20, owner: owner.fingerprint } },
    });
    expect(errorCode(await core.request(other, "join", { payload: { namespace: roomId } }))).toBe(403);
    expect(errorCode(await core.request(other, "room_info", { payload: { room_id: "missing" } }))).toBe(404);
  });

  it("leave tells the others once; leaving again is 404", async () => {
    const core = new CoreHarness();
    const a = await core.peer("key-a", "lobby");
    const b = await core.peer("key-b", "lobby");
    expect((await core.request(b, "leave", { payload: { namespace: "lobby" } })).type).toBe("ok");
    expect(a.connection.of("peer_left")).toEqual([{ type: "peer_left", body: { from: b.fingerprint, namespace: "lobby" } }]);
    expect(b.connection.rooms.has("ns:lobby")).toBe(false);
    expect(b.session.memberships.has("lobby")).toBe(false);
    expect(errorCode(await core.request(b, "leave", { payload: { namespace: "lobby" } }))).toBe(404);
  });

  it("discover pages the members, oldest first, with the full total", async () => {
    const core = new CoreHarness();
    const peers = [await core.peer("key-a", "lobby"), await core.peer("key-b", "lobby"), await core.peer("key-c", "lobby")];
    const page = await core.request(peers[2]!, "discover", { payload: { namespace: "lobby", limit: 2 } });
    expect(page.type).toBe("peer_list");
    expect(page.body["payload"]).toMatchObject({ namespace: "lobby", total: 3, peers: [{ fingerprint: peers[0]!.fingerprint }, { fingerprint: peers[1]!.fingerprint }] });
  });
});
