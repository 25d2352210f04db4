import { describe, expect, it } from "vitest";
import { decodeRequest } from "../../../src/protocol/decoder.ts";
import { CoreHarness, FakeConnection, HoldingStore, errorCode } from "../../helpers/core-harness.ts";
import type { Session } from "../../../src/core/session.ts";

describe("the hub's dispatch", () => {
  it("answers a session's requests in order, even when an earlier one waits for the store", async () => {
    const store = new HoldingStore();
    const core = new CoreHarness({ store });
    const a = await core.peer("key-a");
    const release = store.hold(a.fingerprint, "before");
    const replies = [core.request(a, "join", { payload: { namespace: "lobby" } }), core.request(a, "ping"), core.request(a, "leave", { payload: { namespace: 5 } })];
    release();
    await Promise.all(replies);
    expect(a.connection.received.slice(1).map((message) => message.type)).toEqual(["peer_list", "pong", "error"]);
  });

  it("pong carries the clock's time; requests without a reply are acknowledged with ok", async () => {
    const core = new CoreHarness();
    const a = await core.peer("key-a", "lobby");
    expect(await core.request(a, "ping")).toEqual({ type: "pong", body: { ts: core.clock.now } });
    expect(await core.request(a, "leave", { payload: { namespace: "lobby" } })).toEqual({ type: "ok", body: { payload: { ref: "leave" } } });
  });

  it("without an ack the reply goes to the connection; an edge rejection has no ref", async () => {
    const core = new CoreHarness();
    const a = await core.peer("key-a");
    core.hub.receive(a.session, decodeRequest("ping", {}));
    core.hub.reject(a.session, 400, "invalid JSON");
    expect(a.connection.received.slice(-2)).toEqual([
      { type: "pong", body: { ts: core.clock.now } },
      { type: "error", body: { payload: { code: 400, message: "invalid JSON" } } },
    ]);
  });

  it("every message takes a token of the key's budget: past it, 429 and the connection stays", async () => {
    const core = new CoreHarness({ config: { rate_limit_burst: 3, rate_limit_per_sec: 1 } });
    const a = core.connect();
    await core.request(a, "register", { payload: { public_key: "key-a" } });
    // register spent the connection's own budget; the key's starts full.
    const replies = [];
    for (const type of ["ping", "ping", "ping", "ping", "teleport"]) replies.push(await core.request(a, type));
    expect(replies.map((reply) => (reply.type === "error" ? errorCode(reply) : reply.type))).toEqual(["pong", "pong", "pong", 429, 429]);
    expect(replies[4]?.body).toEqual({ payload: { code: 429, message: "rate limited", ref: "teleport" } });
    expect(a.connection.closeCode).toBeUndefined();
  });

  it("a key's spent budget is kept across its reconnect, but not across a close by the server's own stop", async () => {
    const core = new CoreHarness({ config: { rate_limit_burst: 2, rate_limit_per_sec: 1 } });
    const pings = async (peer: { connection: FakeConnection; session: Session }): Promise<unknown[]> => {
      const replies = [];
      for (let i = 0; i < 3; i++) replies.push(await core.request(peer, "ping"));
      return replies.map((reply) => (reply.type === "error" ? errorCode(reply) : reply.type));
    };
    const first = core.connect();
    await core.request(first, "register", { payload: { public_key: "key-a" } });
    expect(await pings(first)).toEqual(["pong", "pong", 429]);
    await core.hub.close(first.session, { code: 1006, reason: "", byServer: false });

    const second = core.connect();
    await core.request(second, "register", { payload: { public_key: "key-a" } });
    expect(await pings(second)).toEqual([429, 429, 429]);
    await core.hub.close(second.session, { code: 1001, reason: "server shutting down", byServer: true, serverStop: true });

    const third = core.connect();
    await core.request(third, "register", { payload: { public_key: "key-a" } });
    expect(await pings(third)).toEqual(["pong", "pong", 429]);
  });

  it("at most rate_limit_burst requests wait per connection: more get 429 at once", async () => {
    const store = new HoldingStore();
    const core = new CoreHarness({ store, config: { rate_limit_burst: 4, rate_limit_per_sec: 1 } });
    const a = await core.peer("key-a");
    const release = store.hold(a.fingerprint, "before");
    // The join is being handled; four more wait behind it, the fifth is refused before any of them is answered.
    const join = core.request(a, "join", { payload: { namespace: "lobby" } });
    const waiting = [core.request(a, "ping"), core.request(a, "ping"), core.request(a, "ping"), core.request(a, "ping")];
    expect(errorCode(await core.request(a, "ping"))).toBe(429);
    expect(a.connection.received.map((message) => message.type)).toEqual(["registered", "error"]);
    release();
    expect((await join).type).toBe("peer_list");
    // The budget holds rate_limit_burst tokens too: the join and three pings; the last waiting ping finds none.
    expect((await Promise.all(waiting)).map((reply) => (reply.type === "error" ? errorCode(reply) : reply.type))).toEqual(["pong", "pong", "pong", 429]);
  });

  it("refuses a connection while full or draining, with 503 and close 1013", () => {
    const core = new CoreHarness();
    const full = new FakeConnection("full");
    expect(core.hub.open(full, true)).toBeUndefined();
    core.hub.stopAccepting();
    const late = new FakeConnection("late");
    expect(core.hub.open(late, false)).toBeUndefined();
    expect([full, late].map((connection) => [connection.closeCode, connection.received[0]?.body])).toEqual([
      [1013, { payload: { code: 503, message: "server full", close_code: 1013 } }],
      [1013, { payload: { code: 503, message: "server shutting down", close_code: 1013 } }],
    ]);
  });
});
