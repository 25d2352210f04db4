import { describe, expect, it } from "vitest";
import { aliasCandidates, fingerprintOf } from "../../../src/core/alias.ts";
import { CoreHarness, errorCode } from "../../helpers/core-harness.ts";

describe("register", () => {
  it("gives the key's fingerprint and its first generated alias, and puts the connection in its peer room", async () => {
    const core = new CoreHarness();
    const peer = core.connect();
    const reply = await core.request(peer, "register", { payload: { public_key: "key-a" } });
    const fingerprint = fingerprintOf("key-a");
    const alias = aliasCandidates(fingerprint)[0] as string;
    const token = (reply.body["payload"] as { resume_token?: unknown }).resume_token;
    expect(token).toEqual(expect.stringMatching(/^[A-Za-z0-9_-]{43}$/));
    expect(reply).toEqual({ type: "registered", body: { from: fingerprint, payload: { fingerprint, alias, verified: false, resume_token: token, resumed: false } } });
    expect(alias).toMatch(/^[a-z]+-[a-z]+-\d{2}$/);
    expect(await core.store.resolvePeer(fingerprint)).toMatchObject({ alias, connectionId: peer.connection.id, nodeId: "node-test" });
    expect(peer.connection.rooms.has(`fp:${fingerprint}`)).toBe(true);
  });

  it("takes a requested alias when free; a taken one is 409 and the connection stays unregistered", async () => {
    const core = new CoreHarness();
    const first = core.connect();
    expect((await core.request(first, "register", { payload: { public_key: "key-a", alias: "captain" } })).body).toMatchObject({
      payload: { alias: "captain" },
    });
    const second = core.connect();
    const taken = await core.request(second, "register", { payload: { public_key: "key-b", alias: "captain" } });
    expect(errorCode(taken)).toBe(409);
    expect(errorCode(await core.request(second, "ping"))).toBe(400); // register first
    expect((await core.request(second, "register", { payload: { public_key: "key-b" } })).type).toBe("registered");
  });

  it("a key registering again replaces its connection: 409 with close 4001, one peer_left, the new one untouched", async () => {
    const core = new CoreHarness();
    const old = await core.peer("key-a", "lobby");
    const watcher = await core.peer("key-w", "lobby");
    const budget = old.session.budget;

    const fresh = core.connect();
    const reply = await core.request(fresh, "register", { payload: { public_key: "key-a" } });
    expect(reply.body).toMatchObject({ payload: { fingerprint: old.fingerprint, alias: old.alias } });

    expect(old.connection.closeCode).toBe(4001);
    expect(old.connection.of("error").at(-1)?.body).toEqual({
      payload: { code: 409, message: "replaced by a newer connection with the same key", close_code: 4001 },
    });
    await core.hub.close(old.session);
    expect(watcher.connection.of("peer_left")).toEqual([{ type: "peer_left", body: { from: old.fingerprint, namespace: "lobby" } }]);
    expect(core.delivery.of("peer_left")).toHaveLength(1);
    expect(fresh.connection.received.filter((message) => message.type !== "registered")).toEqual([]);
    expect(fresh.connection.closeCode).toBeUndefined();
    // The store holds the key for the new connection, in no namespace; its budget is the old one's.
    expect(await core.store.resolvePeer(old.fingerprint)).toMatchObject({ connectionId: fresh.connection.id });
    expect((await core.store.listMembers("lobby", watcher.fingerprint, 10)).peers.map((peer) => peer.fingerprint)).toEqual([watcher.fingerprint]);
    expect(fresh.session.budget).toBe(budget);
    expect(core.delivery.closedElsewhere).toEqual([]);
  });

  it("a key connected on another process is closed there", async () => {
    const core = new CoreHarness();
    const fingerprint = fingerprintOf("key-a");
    await core.store.registerPeer({ fingerprint, connectionId: "remote-1", nodeId: "node-2", alias: undefined, aliasCandidates: ["far-away-01"], meta: {}, verified: false });
    const here = core.connect();
    expect((await core.request(here, "register", { payload: { public_key: "key-a" } })).type).toBe("registered");
    expect(core.delivery.closedElsewhere).toEqual(["remote-1"]);
  });

  it("register comes first and only once; the phase is checked before the fields", async () => {
    const core = new CoreHarness();
    const peer = core.connect();
    for (const [type, envelope] of [
      ["join", { payload: { namespace: "lobby" } }],
      ["join", { payload: { namespace: 5 } }],
      ["ping", {}],
    ] as const) {
      expect((await core.request(peer, type, envelope)).body).toEqual({ payload: { code: 400, message: "register first", ref: type } });
    }
    expect((await core.request(peer, "teleport")).body).toEqual({ payload: { code: 400, message: 'unknown message type "teleport"', ref: "teleport" } });
    await core.request(peer, "register", { payload: { public_key: "key-a" } });
    for (const envelope of [{ payload: { public_key: "key-a" } }, { payload: { public_key: 5 } }]) {
      expect((await core.request(peer, "register", envelope)).body).toEqual({ payload: { code: 400, message: "already registered", ref: "register" } });
    }
    expect((await core.request(peer, "join", { payload: { namespace: 5 } })).body).toMatchObject({ payload: { code: 400, ref: "join" } });
  });

  it("closes a connection that does not register within pong_wait (1008), and only that one", async () => {
    const core = new CoreHarness();
    const idle = core.connect();
    const registered = await core.peer("key-a");
    core.clock.advance(9_999);
    expect(idle.connection.closeCode).toBeUndefined();
    core.clock.advance(1);
    expect(idle.connection.closeCode).toBe(1008);
    expect(idle.connection.of("error").at(-1)?.body).toEqual({ payload: { code: 400, message: "register timeout", close_code: 1008 } });
    expect(registered.connection.closeCode).toBeUndefined();
    expect(core.clock.pending).toBe(0);
  });

  it("metadata merges into the peer's meta (null removes a key); later lists show it", async () => {
    const core = new CoreHarness();
    const peer = core.connect();
    await core.request(peer, "register", { payload: { public_key: "key-a", meta: { level: 1, team: "red" } } });
    expect(await core.request(peer, "metadata", { payload: { meta: { level: 2, team: null } } })).toEqual({ type: "ok", body: { payload: { ref: "metadata" } } });
    expect(peer.session.meta).toEqual({ level: 2 });
    const list = await core.request(peer, "join", { payload: { namespace: "lobby" } });
    expect((list.body["payload"] as { peers: { meta: unknown }[] }).peers[0]?.meta).toEqual({ level: 2 });
  });

  it("a closed peer leaves the store and its namespaces hear one peer_left", async () => {
    const core = new CoreHarness();
    const leaving = await core.peer("key-a", "lobby", "arena");
    const watcher = await core.peer("key-w", "lobby");
    leaving.connection.close(1001);
    await core.hub.close(leaving.session);
    expect(await core.store.resolvePeer(leaving.fingerprint)).toBeUndefined();
    expect(watcher.connection.of("peer_left")).toEqual([{ type: "peer_left", body: { from: leaving.fingerprint, namespace: "lobby" } }]);
    expect(core.delivery.of("peer_left").map((emit) => emit.rooms)).toEqual([["ns:lobby"], ["ns:arena"]]);
  });
});
