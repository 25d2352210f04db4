import { describe, expect, it } from "vitest";
import { fingerprintOf } from "../../../src/core/alias.ts";
import { CoreHarness, errorCode } from "../../helpers/core-harness.ts";

describe("signal and relay", () => {
  it("to a peer here: the payload's received text is forwarded as is, with the server's from, to and ts", async () => {
    const core = new CoreHarness();
    const a = await core.peer("key-a", "lobby");
    const b = await core.peer("key-b", "lobby");
    const payloadJson = '{ "sdp" : "v=0\\r\\n", "n": 1.50 }';
    const reply = await core.request(a, "signal", { to: b.fingerprint.toUpperCase(), payload: JSON.parse(payloadJson) as unknown, from: "forged" }, payloadJson);
    expect(reply).toEqual({ type: "ok", body: { payload: { ref: "signal" } } });
    expect(b.connection.of("signal")).toEqual([
      {
        type: "signal",
        json: `{"from":"${a.fingerprint}","to":"${b.fingerprint}","payload":${payloadJson},"ts":${core.clock.now}}`,
        body: { from: a.fingerprint, to: b.fingerprint, payload: { sdp: "v=0\r\n", n: 1.5 }, ts: core.clock.now },
      },
    ]);
    expect(core.delivery.toPeers).toEqual([]);
  });

  it("without the received text (Socket.IO) the payload object is serialized once, into the body's text; `to` may be an alias", async () => {
    const core = new CoreHarness();
    const a = await core.peer("key-a", "lobby");
    const b = await core.peer("key-b", "lobby");
    await core.request(a, "relay", { to: b.alias, payload: { move: "e4" } });
    expect(b.connection.of("relay")).toEqual([
      {
        type: "relay",
        json: `{"from":"${a.fingerprint}","to":"${b.fingerprint}","payload":{"move":"e4"},"ts":${core.clock.now}}`,
        body: { from: a.fingerprint, to: b.fingerprint, payload: { move: "e4" }, ts: core.clock.now },
      },
    ]);
  });

  it("needs a shared scope (403), another peer (400) and an existing one (404)", async () => {
    const core = new CoreHarness();
    const a = await core.peer("key-a", "lobby");
    const b = await core.peer("key-b", "arena");
    expect(errorCode(await core.request(a, "signal", { to: b.fingerprint, payload: {} }))).toBe(403);
    expect(errorCode(await core.request(a, "signal", { to: a.fingerprint, payload: {} }))).toBe(400);
    expect(errorCode(await core.request(a, "signal", { to: "nobody-here", payload: {} }))).toBe(404);
    expect(b.connection.of("signal")).toEqual([]);
  });

  it("to a peer on another process: the store resolves it and delivery gets the body and its text", async () => {
    const core = new CoreHarness();
    const a = await core.peer("key-a", "lobby");
    const far = fingerprintOf("key-far");
    await core.store.registerPeer({ fingerprint: far, connectionId: "remote-1", nodeId: "node-2", alias: undefined, aliasCandidates: ["far-away-01"], meta: {}, verified: false });
    await core.store.joinNamespace("lobby", far, { appType: "", meta: undefined, listLimit: 0 });
    const ts = core.clock.now;
    await core.request(a, "signal", { to: "far-away-01", payload: { x: 1 } }, '{"x":1}');
    expect(core.delivery.toPeers).toEqual([
      {
        target: { fingerprint: far, alias: "far-away-01", connectionId: "remote-1", nodeId: "node-2" },
        type: "signal",
        body: { from: a.fingerprint, to: far, payload: { x: 1 }, ts },
        bodyJson: `{"from":"${a.fingerprint}","to":"${far}","payload":{"x":1},"ts":${ts}}`,
      },
    ]);
  });
});

describe("broadcast", () => {
  it("reaches every other member but the excluded ones, from one emit", async () => {
    const core = new CoreHarness();
    const [a, b, c, d] = [await core.peer("key-a", "lobby"), await core.peer("key-b", "lobby"), await core.peer("key-c", "lobby"), await core.peer("key-d", "arena")];
    const reply = await core.request(a, "broadcast", { payload: { namespace: "lobby", data: { hello: true }, exclude: [c.fingerprint.toUpperCase()] } });
    expect(reply.type).toBe("ok");
    const message = { type: "broadcast", body: { from: a.fingerprint, namespace: "lobby", payload: { namespace: "lobby", data: { hello: true } }, ts: core.clock.now } };
    expect(b.connection.of("broadcast")).toEqual([message]);
    expect([a, c, d].map((peer) => peer.connection.of("broadcast"))).toEqual([[], [], []]);
    expect(core.delivery.of("broadcast")).toHaveLength(1);
    expect(core.delivery.of("broadcast")[0]?.except).toEqual([a.connection.id, `fp:${c.fingerprint}`]);
  });

  it("needs membership (403); a name nobody is in is 404", async () => {
    const core = new CoreHarness();
    const a = await core.peer("key-a", "lobby");
    await core.peer("key-b", "arena");
    expect(errorCode(await core.request(a, "broadcast", { payload: { namespace: "arena", data: 1 } }))).toBe(403);
    expect(errorCode(await core.request(a, "broadcast", { payload: { namespace: "nowhere", data: 1 } }))).toBe(404);
    expect(core.delivery.of("broadcast")).toEqual([]);
  });
});
