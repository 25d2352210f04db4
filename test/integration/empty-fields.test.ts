import { describe, expect, it } from "vitest";
import { TRANSPORTS, type Envelope, type TestPeer, type Transport } from "../helpers/peers.ts";
import { useServer } from "../helpers/use-server.ts";
import { entryOf, expectError, expectOk, otherTransport, outcome, unique } from "./messaging-support.ts";

/**
 * Optional fields sent empty read as absent (docs/protocol.md, "Empty optional fields"): `null`
 * and `""` in optional strings, objects and arrays, `0` in `limit` and `max_size`; `{}` and `[]`
 * are empty values. The original server's own client sends `alias: ""` whenever its user set none.
 */

const fixture = useServer();

const GENERATED_ALIAS = /^[a-z]+-[a-z]+-(0[1-9]|[1-9][0-9])$/;

const peer = (transport: Transport, namespace?: string): Promise<TestPeer> => fixture.peer(transport, { namespace });

async function registerWith(transport: Transport, payload: Record<string, unknown>): Promise<Envelope> {
  const client = await fixture.connect(transport);
  return client.request("register", { payload: { public_key: unique("key"), ...payload } }, ["registered"]);
}

describe.each(TRANSPORTS)("empty optional fields over %s", (transport) => {
  const other = otherTransport(transport);

  it.each([
    ["the empty string", ""],
    ["null", null],
  ])("register with alias %s gets a generated alias", async (_label, alias) => {
    const reply = await registerWith(transport, { alias });
    expect(reply).toMatchObject({ type: "registered", payload: { alias: expect.stringMatching(GENERATED_ALIAS) } });
  });

  it("any other invalid alias is still 400, and a taken one 409", async () => {
    expect((await registerWith(transport, { alias: " " })).payload).toMatchObject({ code: 400, ref: "register" });
    const holder = await peer(other);
    expect((await registerWith(transport, { alias: holder.alias })).payload).toMatchObject({ code: 409, ref: "register" });
  });

  it.each([
    ["{}", {}],
    ["null", null],
    ["the empty string", ""],
  ])("register with meta %s starts with meta {}", async (_label, meta) => {
    const namespace = unique("reg-meta");
    const client = await fixture.connect(transport);
    expect((await client.request("register", { payload: { public_key: unique("key"), meta } }, ["registered"])).type).toBe("registered");
    const list = await client.join(namespace);
    expect(list.payload?.["peers"]).toEqual([expect.objectContaining({ app_type: "", meta: {} })]);
  });

  it.each([
    ["the empty string", ""],
    ["null", null],
  ])("join with app_type %s shows the default app_type in discover", async (_label, appType) => {
    const namespace = unique("app");
    const member = await peer(transport);
    expect((await member.join(namespace, { app_type: appType })).type).toBe("peer_list");
    const viewer = await peer(other);
    expect((await outcome(viewer, "discover", { payload: { namespace } })).payload).toEqual({ namespace, peers: [entryOf(member)], total: 1 });
  });

  it("join with meta {}, null or the empty string keeps the peer's meta; metadata {} changes nothing, null or the empty string is 400", async () => {
    const client = await fixture.connect(transport);
    expect((await client.register({ meta: { name: "Ann" } })).type).toBe("registered");
    const namespaces = [unique("jm"), unique("jm"), unique("jm")];
    for (const [index, meta] of [{}, null, ""].entries()) {
      const list = await client.join(namespaces[index] as string, { meta });
      expect(list.payload?.["peers"], JSON.stringify(meta)).toEqual([entryOf(client, "", { name: "Ann" })]);
    }
    await expectOk(client, "metadata", { payload: { meta: {} } });
    await expectError(client, "metadata", { payload: { meta: null } }, 400);
    await expectError(client, "metadata", { payload: { meta: "" } }, 400);
    const found = await outcome(client, "discover", { payload: { namespace: namespaces[0] } });
    expect(found.payload?.["peers"]).toEqual([entryOf(client, "", { name: "Ann" })]);
  });

  it("discover with limit 0 or null lists the default 50", async () => {
    const namespace = unique("crowd");
    for (let index = 0; index < 51; index++) await peer(index % 2 === 0 ? "ws" : "sio", namespace);
    const asker = await peer(transport);
    for (const limit of [0, null]) {
      const reply = await outcome(asker, "discover", { payload: { namespace, limit } });
      expect(reply.type).toBe("peer_list");
      expect((reply.payload?.["peers"] as unknown[]).length, String(limit)).toBe(50);
      expect(reply.payload?.["total"]).toBe(51);
    }
    await expectError(asker, "discover", { payload: { namespace, limit: -1 } }, 400);
  });

  it.each([
    ["the empty string", ""],
    ["null", null],
  ])("create_room with room_id %s gets a generated id", async (_label, roomId) => {
    const owner = await peer(transport);
    const created = await outcome(owner, "create_room", { payload: { room_id: roomId } });
    expect(created).toMatchObject({ type: "room_created", payload: { room_id: expect.stringMatching(/^room-[0-9a-f]{16}$/), max_size: 20, owner: owner.fingerprint } });
  });

  it.each([
    ["0", 0],
    ["null", null],
  ])("create_room with max_size %s gets the default 20", async (_label, maxSize) => {
    const owner = await peer(transport);
    const roomId = unique("room");
    const created = await outcome(owner, "create_room", { payload: { room_id: roomId, max_size: maxSize } });
    expect(created).toMatchObject({ type: "room_created", payload: { room_id: roomId, max_size: 20 } });
    expect((await outcome(owner, "room_info", { payload: { room_id: roomId } })).payload).toMatchObject({ max_size: 20 });
  });

  it.each([
    ["[]", []],
    ["null", null],
    ["the empty string", ""],
  ])("broadcast with exclude %s excludes nobody", async (_label, exclude) => {
    const namespace = unique("bc");
    const sender = await peer(transport, namespace);
    const receivers = [await peer("ws", namespace), await peer("sio", namespace)];
    await expectOk(sender, "broadcast", { payload: { namespace, data: { n: 1 }, exclude } });
    for (const receiver of receivers) expect(await receiver.next("broadcast")).toMatchObject({ from: sender.fingerprint, payload: { namespace, data: { n: 1 } } });
  });

  it.each([
    ["{} then null", {}, null],
    ["null then {}", null, {}],
    ["the empty string then {}", "", {}],
  ])("match criteria %s match each other", async (_label, first, second) => {
    const namespace = unique("mm");
    const a = await peer(transport, namespace);
    const b = await peer(other, namespace);
    expect(await outcome(a, "match", { payload: { namespace, group_size: 2, criteria: first } })).toMatchObject({ type: "match", payload: { status: "waiting" } });
    const matched = await outcome(b, "match", { payload: { namespace, group_size: 2, criteria: second } });
    expect(matched).toMatchObject({ type: "matched", payload: { namespace } });
    expect(await a.next("matched")).toMatchObject({ payload: { session_id: matched.payload?.["session_id"] } });
  });
});
