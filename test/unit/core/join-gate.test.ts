import { describe, expect, it } from "vitest";
import { fingerprintOf } from "../../../src/core/alias.ts";
import { CoreHarness, HoldingStore, errorCode, settle, type Received } from "../../helpers/core-harness.ts";

/** Who a peer_list shows, and whom peer_joined notices announced, in the order they arrived. */
const listed = (message: Received): string[] => (message.body["payload"] as { peers: { fingerprint: string }[] }).peers.map((peer) => peer.fingerprint);
const joinedNotices = (received: Received[]): string[] => received.filter((message) => message.type === "peer_joined").map((message) => String(message.body["from"]));

describe("join: every member learns of every other exactly once, after its own peer_list", () => {
  it("the joiner's list has the earlier members; they get one peer_joined about it", async () => {
    const core = new CoreHarness();
    const a = await core.peer("key-a");
    const b = await core.peer("key-b");
    const first = await core.request(a, "join", { payload: { namespace: "lobby", app_type: "chess", meta: { skill: 3 } } });
    expect(first.body).toEqual({
      namespace: "lobby",
      payload: { namespace: "lobby", total: 1, peers: [{ fingerprint: a.fingerprint, alias: a.alias, app_type: "chess", meta: { skill: 3 }, verified: false }] },
    });
    const second = await core.request(b, "join", { payload: { namespace: "lobby" } });
    expect(listed(second)).toEqual([a.fingerprint, b.fingerprint]);
    expect(a.connection.of("peer_joined")).toEqual([
      { type: "peer_joined", body: { from: b.fingerprint, namespace: "lobby", payload: { fingerprint: b.fingerprint, alias: b.alias, app_type: "", meta: {}, verified: false } } },
    ]);
    expect(joinedNotices(b.connection.received)).toEqual([]);
    // The notice carries the joiner's place in join order.
    expect(core.delivery.of("peer_joined").map((emit) => emit.fence)).toEqual([
      { scope: "lobby", seq: expect.any(Number) },
      { scope: "lobby", seq: expect.any(Number) },
    ]);
  });

  it("a repeated join is idempotent: the same list, and no second peer_joined", async () => {
    const core = new CoreHarness();
    const a = await core.peer("key-a", "lobby");
    const b = await core.peer("key-b", "lobby");
    const again = await core.request(b, "join", { payload: { namespace: "lobby", app_type: "other" } });
    expect(listed(again)).toEqual([a.fingerprint, b.fingerprint]);
    expect(joinedNotices(a.connection.received)).toEqual([b.fingerprint]);
    expect(b.session.memberships.get("lobby")?.appType).toBe("");
  });

  it("a notice that reached the joiner before the store listed its subject is dropped: the list has it", async () => {
    const store = new HoldingStore();
    const core = new CoreHarness({ store });
    const a = await core.peer("key-a", "lobby");
    const b = await core.peer("key-b");
    const c = await core.peer("key-c");
    const release = store.hold(b.fingerprint, "before");
    const bJoin = core.request(b, "join", { payload: { namespace: "lobby" } });
    // B is in the adapter room already; C's join completes first, and its notice reaches B.
    expect(b.connection.rooms.has("ns:lobby")).toBe(true);
    await core.request(c, "join", { payload: { namespace: "lobby" } });
    expect(joinedNotices(b.connection.received)).toEqual([]);
    release();
    expect(listed(await bJoin)).toEqual([a.fingerprint, c.fingerprint, b.fingerprint]);
    await settle();
    expect(joinedNotices(b.connection.received)).toEqual([]);
    expect(joinedNotices(c.connection.received)).toEqual([b.fingerprint]);
    expect(joinedNotices(a.connection.received)).toEqual([c.fingerprint, b.fingerprint]);
  });

  it("a notice about a later joiner is held while the joiner's reply is late, then follows its peer_list", async () => {
    const store = new HoldingStore();
    const core = new CoreHarness({ store });
    const a = await core.peer("key-a", "lobby");
    const b = await core.peer("key-b");
    const c = await core.peer("key-c");
    const release = store.hold(b.fingerprint, "after");
    const bJoin = core.request(b, "join", { payload: { namespace: "lobby" } });
    await settle();
    await core.request(c, "join", { payload: { namespace: "lobby" } });
    expect(b.connection.received.filter((message) => message.type === "peer_joined" || message.type === "peer_list")).toEqual([]);
    release();
    expect(listed(await bJoin)).toEqual([a.fingerprint, b.fingerprint]);
    const order = b.connection.received.filter((message) => message.type === "peer_joined" || message.type === "peer_list");
    expect(order.map((message) => [message.type, message.type === "peer_joined" ? message.body["from"] : listed(message).length])).toEqual([
      ["peer_list", 2],
      ["peer_joined", c.fingerprint],
    ]);
    // C joined after B: B's own notice reaches C once, and C's list did not have B.
    expect(joinedNotices(c.connection.received)).toEqual([]);
  });

  it("a fenced notice about a member the recipient's list had arrives late (from another process): dropped", async () => {
    const core = new CoreHarness();
    const a = await core.peer("key-a", "lobby");
    const b = await core.peer("key-b", "lobby");
    const aSeq = a.session.memberships.get("lobby")?.joinSeq as number;
    const late = { from: a.fingerprint, namespace: "lobby", payload: {} };
    core.delivery.emit("ns:lobby", "peer_joined", late, [a.connection.id], { scope: "lobby", seq: aSeq });
    expect(joinedNotices(b.connection.received)).toEqual([]);
    const later = await core.peer("key-c");
    core.delivery.emit("ns:lobby", "peer_joined", { ...late, from: later.fingerprint }, [], { scope: "lobby", seq: aSeq + 100 });
    expect(joinedNotices(b.connection.received)).toEqual([later.fingerprint]);
  });

  it("a refused join leaves the connection out of the room and delivers nothing it held", async () => {
    const core = new CoreHarness();
    const owner = await core.peer("key-a");
    await core.request(owner, "create_room", { payload: { room_id: "secret" } });
    const b = await core.peer("key-b");
    expect(errorCode(await core.request(b, "join", { payload: { namespace: "secret" } }))).toBe(403);
    expect(b.connection.rooms.has("ns:secret")).toBe(false);
    expect(b.session.entering).toBeUndefined();
    expect(core.hub.joinGate.idle()).toBe(true);
  });

  it("a join_room records the room's size, and a room's creator hears of every later member", async () => {
    const core = new CoreHarness();
    const owner = await core.peer("key-a");
    expect((await core.request(owner, "create_room", { payload: { room_id: "den", max_size: 4 } })).body).toEqual({
      payload: { room_id: "den", max_size: 4, owner: owner.fingerprint },
    });
    const b = await core.peer("key-b");
    expect(listed(await core.request(b, "join_room", { payload: { room_id: "den" } }))).toEqual([owner.fingerprint, b.fingerprint]);
    expect(b.session.memberships.get("den")).toEqual({ appType: undefined, roomSize: 4, joinSeq: expect.any(Number) });
    expect(joinedNotices(owner.connection.received)).toEqual([fingerprintOf("key-b")]);
  });
});
