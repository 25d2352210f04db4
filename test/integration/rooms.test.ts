import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { sha256, TRANSPORT_PAIRS, type Envelope, type Fields, type TestPeer, type Transport } from "../helpers/peers.ts";
import { getJson } from "../helpers/server-process.ts";
import { useServer } from "../helpers/use-server.ts";
import { reply } from "./messaging-support.ts";

// No kick ban here: a kicked peer joining again at once is part of what kick is tested for below;
// the ban itself is tested in peer-caps.test.ts.
const fixture = useServer({ config: { kick_ban: 0 } });

const unique = (label: string): string => `${label}-${randomUUID().slice(0, 8)}`;

const peer = (transport: Transport): Promise<TestPeer> => fixture.peer(transport);

async function expectOk(from: TestPeer, type: string, fields: Fields = {}): Promise<void> {
  const answer = await reply(from, type, fields);
  expect(answer.type, JSON.stringify(answer)).toBe(from.transport === "sio" ? "ok" : "pong");
}

async function expectError(from: TestPeer, type: string, fields: Fields, code: number): Promise<void> {
  const answer = await reply(from, type, fields);
  expect(answer.type, JSON.stringify(answer)).toBe("error");
  expect(answer.payload).toMatchObject({ code, ref: type });
}

async function createRoom(owner: TestPeer, payload: Record<string, unknown>): Promise<Envelope> {
  const answer = await reply(owner, "create_room", { payload });
  expect(answer.type, JSON.stringify(answer)).toBe("room_created");
  return answer;
}

async function joinRoom(joiner: TestPeer, roomId: string): Promise<Envelope> {
  const answer = await reply(joiner, "join_room", { payload: { room_id: roomId } });
  expect(answer.type, JSON.stringify(answer)).toBe("peer_list");
  return answer;
}

/** Creates a room with a fresh id (and `options`, e.g. max_size) owned by `owner`, then `members` join it in order; returns the id. */
async function roomOf(owner: TestPeer, members: TestPeer[] = [], options: Record<string, unknown> = {}): Promise<string> {
  const roomId = unique("room");
  await createRoom(owner, { room_id: roomId, ...options });
  for (const joiner of members) await joinRoom(joiner, roomId);
  return roomId;
}

const roomInfo = (asker: TestPeer, roomId: string): Promise<Envelope> => reply(asker, "room_info", { payload: { room_id: roomId } });

const leftFrom = (fingerprint: string, scope: string) => (message: Envelope) =>
  message.type === "peer_left" && message.from === fingerprint && message.namespace === scope;

const member = (p: TestPeer) => ({ fingerprint: p.fingerprint, alias: p.alias, app_type: "", meta: {}, verified: false });

describe.each(TRANSPORT_PAIRS)("rooms: owner over %s, others over %s", (ownerTransport, otherTransport) => {
  it("create_room replies room_created with the id, max_size and owner", async () => {
    const owner = await peer(ownerTransport);
    const roomId = unique("room");
    const created = await createRoom(owner, { room_id: roomId, max_size: 5 });
    expect(created.payload).toEqual({ room_id: roomId, max_size: 5, owner: owner.fingerprint });
    expect(await roomInfo(owner, roomId)).toMatchObject({ type: "room_info", payload: { room_id: roomId, peer_count: 1, max_size: 5, owner: owner.fingerprint } });
  });

  it("without room_id the server generates one, and max_size defaults to 20", async () => {
    const owner = await peer(ownerTransport);
    const first = await createRoom(owner, {});
    const second = await createRoom(owner, {});
    const roomId = first.payload?.["room_id"];
    expect(roomId).toEqual(expect.stringMatching(/^[A-Za-z0-9_.:-]{1,64}$/));
    expect(second.payload?.["room_id"]).not.toBe(roomId);
    expect(first.payload).toMatchObject({ max_size: 20, owner: owner.fingerprint });
    const guest = await peer(otherTransport);
    const list = await joinRoom(guest, String(roomId));
    expect(list.payload?.["total"]).toBe(2);
  });

  it("max_size above 30 is capped to 30; below 2 is refused with 400", async () => {
    const owner = await peer(ownerTransport);
    const capped = await createRoom(owner, { room_id: unique("room"), max_size: 31 });
    expect(capped.payload?.["max_size"]).toBe(30);
    const smallest = await createRoom(owner, { room_id: unique("room"), max_size: 2 });
    expect(smallest.payload?.["max_size"]).toBe(2);
    const refused = unique("room");
    await expectError(owner, "create_room", { payload: { room_id: refused, max_size: 1 } }, 400);
    await expectError(owner, "room_info", { payload: { room_id: refused } }, 404);
  });

  it("an id taken by a room or by a namespace is refused with 409", async () => {
    const owner = await peer(ownerTransport);
    const other = await peer(otherTransport);
    const roomId = await roomOf(owner);
    await expectError(other, "create_room", { payload: { room_id: roomId } }, 409);
    expect((await roomInfo(other, roomId)).payload).toMatchObject({ owner: owner.fingerprint, peer_count: 1 });

    const namespace = unique("ns");
    await other.join(namespace);
    await expectError(owner, "create_room", { payload: { room_id: namespace } }, 409);
    await expectError(owner, "room_info", { payload: { room_id: namespace } }, 404);
  });

  it("join_room replies peer_list, and the other members get peer_joined", async () => {
    const owner = await peer(ownerTransport);
    const guest = await peer(otherTransport);
    const late = await peer(otherTransport);
    const roomId = await roomOf(owner);
    const list = await joinRoom(guest, roomId);
    expect(list).toMatchObject({ namespace: roomId, payload: { namespace: roomId, total: 2, peers: [member(owner), member(guest)] } });
    const joined = await owner.next("peer_joined");
    expect(joined).toMatchObject({ from: guest.fingerprint, namespace: roomId, payload: member(guest) });

    const third = await joinRoom(late, roomId);
    expect(third.payload).toMatchObject({ total: 3, peers: [member(owner), member(guest), member(late)] });
    for (const p of [owner, guest]) {
      expect(await p.next("peer_joined")).toMatchObject({ from: late.fingerprint, namespace: roomId });
    }
    expect(await late.nothing("peer_joined")).toBe(true);

    // Joining again is idempotent: same list, nobody told twice.
    const again = await joinRoom(guest, roomId);
    expect(again.payload).toMatchObject({ total: 3 });
    expect(await owner.nothing("peer_joined")).toBe(true);
    expect((await roomInfo(owner, roomId)).payload).toMatchObject({ peer_count: 3 });
  });

  it("a full room refuses the next peer with 429", async () => {
    const owner = await peer(ownerTransport);
    const guest = await peer(otherTransport);
    const third = await peer(otherTransport);
    const roomId = await roomOf(owner, [guest], { max_size: 2 });
    await expectError(third, "join_room", { payload: { room_id: roomId } }, 429);
    expect((await roomInfo(owner, roomId)).payload).toMatchObject({ peer_count: 2 });
    // The refused peer did not get in: it cannot see the members.
    await expectError(third, "discover", { payload: { namespace: roomId } }, 403);
  });

  it("join_room on an unknown room or a namespace is 404; join on a room id is 403", async () => {
    const owner = await peer(ownerTransport);
    const other = await peer(otherTransport);
    await expectError(other, "join_room", { payload: { room_id: unique("nowhere") } }, 404);
    const namespace = unique("ns");
    await owner.join(namespace);
    await expectError(other, "join_room", { payload: { room_id: namespace } }, 404);

    const roomId = await roomOf(owner);
    await expectError(other, "join", { payload: { namespace: roomId } }, 403);
    expect((await roomInfo(owner, roomId)).payload).toMatchObject({ peer_count: 1 });
    expect(await owner.nothing("peer_joined")).toBe(true);
  });

  it("discover on a room: 403 for a non-member, the member list for a member", async () => {
    const owner = await peer(ownerTransport);
    const guest = await peer(otherTransport);
    const outsider = await peer(otherTransport);
    const roomId = await roomOf(owner, [guest]);
    await expectError(outsider, "discover", { payload: { namespace: roomId } }, 403);
    const list = await reply(guest, "discover", { payload: { namespace: roomId } });
    expect(list).toMatchObject({ type: "peer_list", payload: { namespace: roomId, total: 2, peers: [member(owner), member(guest)] } });
  });

  it("room_info answers anyone; an unknown room is 404", async () => {
    const owner = await peer(ownerTransport);
    const outsider = await peer(otherTransport);
    const roomId = await roomOf(owner, [], { max_size: 7 });
    const info = await roomInfo(outsider, roomId);
    expect(info).toMatchObject({ type: "room_info", payload: { room_id: roomId, peer_count: 1, max_size: 7, owner: owner.fingerprint } });
    await expectError(outsider, "room_info", { payload: { room_id: unique("nowhere") } }, 404);
  });

  it("kick: 403 for a non-owner, 404 for a non-member target, 400 for the owner itself", async () => {
    const owner = await peer(ownerTransport);
    const guest = await peer(otherTransport);
    const outsider = await peer(otherTransport);
    const roomId = await roomOf(owner, [guest]);
    await owner.next("peer_joined");
    await expectError(guest, "kick", { payload: { room_id: roomId, fingerprint: owner.fingerprint } }, 403);
    await expectError(owner, "kick", { payload: { room_id: roomId, fingerprint: outsider.fingerprint } }, 404);
    await expectError(owner, "kick", { payload: { room_id: roomId, fingerprint: sha256(unique("nobody")) } }, 404);
    await expectError(owner, "kick", { payload: { room_id: roomId, fingerprint: owner.fingerprint } }, 400);
    await expectError(owner, "kick", { payload: { room_id: unique("nowhere"), fingerprint: guest.fingerprint } }, 404);
    expect((await roomInfo(owner, roomId)).payload).toMatchObject({ peer_count: 2, owner: owner.fingerprint });
    expect(await guest.nothing("kick")).toBe(true);
    expect(await owner.nothing("peer_left")).toBe(true);
  });

  it("kick removes the target: it is told, the rest get peer_left, it loses room scope, and may join again", async () => {
    const owner = await peer(ownerTransport);
    const target = await peer(otherTransport);
    const bystander = await peer(otherTransport);
    const roomId = await roomOf(owner, [target, bystander]);

    await expectOk(owner, "kick", { payload: { room_id: roomId, fingerprint: target.fingerprint } });
    expect(await target.next("kick")).toMatchObject({ type: "kick", from: owner.fingerprint, payload: { room_id: roomId, fingerprint: target.fingerprint } });
    for (const p of [owner, bystander]) expect(await p.next(leftFrom(target.fingerprint, roomId))).toMatchObject({ from: target.fingerprint, namespace: roomId });
    expect((await roomInfo(owner, roomId)).payload).toMatchObject({ peer_count: 2, owner: owner.fingerprint });

    // The room was all the target shared with them.
    await expectError(target, "signal", { to: bystander.fingerprint, payload: { sdp: "x" } }, 403);
    await expectError(target, "signal", { to: owner.alias, payload: { sdp: "x" } }, 403);
    await expectError(target, "broadcast", { payload: { namespace: roomId, data: "hi" } }, 403);
    await expectError(target, "discover", { payload: { namespace: roomId } }, 403);
    await expectOk(owner, "broadcast", { payload: { namespace: roomId, data: { n: 1 } } });
    expect(await bystander.next("broadcast")).toMatchObject({ from: owner.fingerprint, payload: { namespace: roomId, data: { n: 1 } } });
    expect(await target.nothing("broadcast")).toBe(true);
    expect(await bystander.nothing("signal")).toBe(true);

    const again = await joinRoom(target, roomId);
    expect(again.payload).toMatchObject({ total: 3, peers: [member(owner), member(bystander), member(target)] });
    expect(await owner.next("peer_joined")).toMatchObject({ from: target.fingerprint, namespace: roomId });
    target.send("signal", { to: bystander.fingerprint, payload: { sdp: "back" } });
    expect(await bystander.next("signal")).toMatchObject({ from: target.fingerprint, payload: { sdp: "back" } });
  });

  it("the owner leaving passes ownership to the earliest member, who can then kick", async () => {
    const owner = await peer(ownerTransport);
    const second = await peer(otherTransport);
    const third = await peer(ownerTransport);
    const roomId = await roomOf(owner, [second, third], { max_size: 4 });
    await expectOk(owner, "leave", { payload: { namespace: roomId } });
    for (const p of [second, third]) await p.next(leftFrom(owner.fingerprint, roomId));
    expect((await roomInfo(third, roomId)).payload).toEqual({ room_id: roomId, peer_count: 2, max_size: 4, owner: second.fingerprint });

    await expectError(owner, "kick", { payload: { room_id: roomId, fingerprint: third.fingerprint } }, 403);
    await expectOk(second, "kick", { payload: { room_id: roomId, fingerprint: third.fingerprint } });
    expect(await third.next("kick")).toMatchObject({ from: second.fingerprint });
  });

  it("the last member leaving deletes the room and frees its id", async () => {
    const owner = await peer(ownerTransport);
    const guest = await peer(otherTransport);
    const roomId = await roomOf(owner, [guest]);
    await expectOk(owner, "leave", { payload: { namespace: roomId } });
    await expectOk(guest, "leave", { payload: { namespace: roomId } });
    await expectError(owner, "room_info", { payload: { room_id: roomId } }, 404);
    await expectError(owner, "join_room", { payload: { room_id: roomId } }, 404);
    const recreated = await createRoom(guest, { room_id: roomId, max_size: 3 });
    expect(recreated.payload).toEqual({ room_id: roomId, max_size: 3, owner: guest.fingerprint });
  });

  it("two peers who share only a room can signal and relay both ways", async () => {
    const owner = await peer(ownerTransport);
    const guest = await peer(otherTransport);
    const roomId = await roomOf(owner);
    await expectError(guest, "signal", { to: owner.fingerprint, payload: { sdp: "early" } }, 403);
    await joinRoom(guest, roomId);

    await expectOk(guest, "signal", { to: owner.fingerprint, payload: { signal_type: "offer", sdp: "v=0" } });
    const offer = await owner.next("signal");
    expect(offer).toMatchObject({ from: guest.fingerprint, to: owner.fingerprint, payload: { signal_type: "offer", sdp: "v=0" } });
    await expectOk(owner, "relay", { to: guest.alias, payload: { blob: [1, 2, 3] } });
    expect(await guest.next("relay")).toMatchObject({ from: owner.fingerprint, to: guest.fingerprint, payload: { blob: [1, 2, 3] } });
  });
});

describe("rooms and /stats", () => {
  it("lists namespaces with their counts but never rooms", async () => {
    const a = await peer("ws");
    const b = await peer("sio");
    const namespace = unique("ns");
    await a.join(namespace);
    await b.join(namespace);
    const roomId = await roomOf(a, [b]);
    const generated = String((await createRoom(b, {})).payload?.["room_id"]);
    const { status, body } = await getJson(`${fixture.server.http}/stats`);
    expect(status).toBe(200);
    const namespaces = body["namespaces"] as Record<string, number>;
    expect(namespaces[namespace]).toBe(2);
    expect(Object.keys(namespaces)).not.toContain(roomId);
    expect(Object.keys(namespaces)).not.toContain(generated);
  });
});
