import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { TRANSPORT_PAIRS, TRANSPORTS, type Fields, type TestPeer, type Transport } from "../helpers/peers.ts";
import { useServer } from "../helpers/use-server.ts";
import { expectError, expectOk, serverTimestamp, unique } from "./messaging-support.ts";

/** signal, relay and broadcast across every transport pair. */

const fixture = useServer();

const peer = (transport: Transport, options: { alias?: string; namespace?: string } = {}): Promise<TestPeer> => fixture.peer(transport, options);

const OFFER = {
  signal_type: "offer",
  sdp: "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n",
};
const ANSWER = { signal_type: "answer", sdp: "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=Ünïcødé ✓ 🎮 日本語 \u2028\u2029 \"quoted\" \\back\\slash\r\n" };
const CANDIDATE = {
  signal_type: "candidate",
  candidate: { candidate: "candidate:1 1 UDP 2122252543 192.168.1.1 12345 typ host", sdpMid: "0", sdpMLineIndex: 0, usernameFragment: null },
};
const RELAY = {
  action: "game_move",
  data: { x: 10, y: -20.5, big: 9_007_199_254_740_991, path: [[0, 1], [2, 3]], flags: { fast: true, ghost: false, nothing: null }, empty: {}, list: [], text: "" },
  nested: { a: { b: { c: { d: ["deep", { e: "🙂" }] } } } },
};

/** The exact envelope a target receives for a signal or relay. */
const delivered = (type: string, from: TestPeer, to: TestPeer, payload: unknown): Record<string, unknown> => ({
  type,
  from: from.fingerprint,
  to: to.fingerprint,
  payload,
  ts: serverTimestamp(),
});

describe.each(TRANSPORT_PAIRS)("signal and relay from %s to %s", (senderTransport, targetTransport) => {
  async function pair(): Promise<{ namespace: string; sender: TestPeer; target: TestPeer }> {
    const namespace = unique("sig");
    const sender = await peer(senderTransport, { namespace });
    const target = await peer(targetTransport, { namespace });
    return { namespace, sender, target };
  }

  it("delivers offer, answer and candidate untouched, addressed by fingerprint or alias", async () => {
    const { sender, target } = await pair();
    await expectOk(sender, "signal", { to: target.fingerprint, payload: OFFER });
    expect(await target.next("signal")).toEqual(delivered("signal", sender, target, OFFER));

    await expectOk(target, "signal", { to: sender.alias, payload: ANSWER });
    expect(await sender.next("signal")).toEqual(delivered("signal", target, sender, ANSWER));

    await expectOk(sender, "signal", { to: target.alias, payload: CANDIDATE });
    expect(await target.next("signal")).toEqual(delivered("signal", sender, target, CANDIDATE));
    expect(await sender.nothing("signal")).toBe(true);
  });

  it("relays an arbitrary nested payload untouched, by fingerprint and by alias", async () => {
    const { sender, target } = await pair();
    await expectOk(sender, "relay", { to: target.fingerprint, payload: RELAY });
    expect(await target.next("relay")).toEqual(delivered("relay", sender, target, RELAY));
    await expectOk(sender, "relay", { to: target.alias, payload: { n: 1 } });
    expect(await target.next("relay")).toEqual(delivered("relay", sender, target, { n: 1 }));
  });

  it("sets from and ts itself and forwards no client-supplied top-level field", async () => {
    const { sender, target } = await pair();
    const forged = { from: "f".repeat(64), ts: 1, namespace: "evil", node_id: "node-9", extra: { x: 1 } };
    for (const type of ["signal", "relay"]) {
      await expectOk(sender, type, { to: target.alias, payload: OFFER, ...forged });
      const received = await target.next(type);
      expect(Object.keys(received).sort()).toEqual(["from", "payload", "to", "ts", "type"]);
      expect(received).toEqual(delivered(type, sender, target, OFFER));
    }
  });

  it("refuses a missing or empty to, a non-object payload and sending to yourself with 400", async () => {
    const { sender, target } = await pair();
    for (const type of ["signal", "relay"]) {
      await expectError(sender, type, { payload: OFFER }, 400);
      await expectError(sender, type, { to: "", payload: OFFER }, 400);
      await expectError(sender, type, { to: 42, payload: OFFER } as unknown as Fields, 400);
      for (const payload of ["v=0", 7, null, undefined, true, ["offer"]]) {
        await expectError(sender, type, { to: target.fingerprint, payload }, 400);
      }
      await expectError(sender, type, { to: sender.fingerprint, payload: OFFER }, 400);
      await expectError(sender, type, { to: sender.alias, payload: OFFER }, 400);
    }
    expect(await target.nothing((m) => m.type === "signal" || m.type === "relay")).toBe(true);
  });

  it("answers 404 for an unknown fingerprint or alias and 403 without a shared namespace", async () => {
    const { sender, target } = await pair();
    const stranger = await peer(targetTransport, { namespace: unique("elsewhere") });
    const loner = await peer(targetTransport);
    for (const type of ["signal", "relay"]) {
      await expectError(sender, type, { to: randomBytes(32).toString("hex"), payload: OFFER }, 404);
      await expectError(sender, type, { to: unique("ghost"), payload: OFFER }, 404);
      await expectError(sender, type, { to: stranger.fingerprint, payload: OFFER }, 403);
      await expectError(sender, type, { to: stranger.alias, payload: OFFER }, 403);
      await expectError(sender, type, { to: loner.fingerprint, payload: OFFER }, 403);
    }
    const quiet = await Promise.all([stranger, loner, target].map((p) => p.nothing((m) => m.type === "signal" || m.type === "relay")));
    expect(quiet).toEqual([true, true, true]);
  });

  it("answers 403 once the target has left the only shared namespace", async () => {
    const { namespace, sender, target } = await pair();
    await expectOk(target, "leave", { payload: { namespace } });
    await expectError(sender, "signal", { to: target.fingerprint, payload: OFFER }, 403);
    await expectError(sender, "relay", { to: target.alias, payload: RELAY }, 403);
  });

  it("never lets an alias capture a signal addressed to another peer's fingerprint", async () => {
    const { namespace, sender, target } = await pair();
    const attacker = await fixture.connect(senderTransport);
    for (const alias of [target.fingerprint, target.fingerprint.toUpperCase()]) {
      expect((await attacker.register({ alias })).payload).toMatchObject({ code: 400, ref: "register" });
    }
    expect((await attacker.register({ alias: target.alias })).payload).toMatchObject({ code: 409, ref: "register" });
    expect((await attacker.register()).type).toBe("registered");
    await attacker.join(namespace);

    await expectOk(sender, "signal", { to: target.fingerprint, payload: OFFER });
    expect(await target.next("signal")).toEqual(delivered("signal", sender, target, OFFER));
    expect(await attacker.nothing("signal")).toBe(true);
  });
});

describe.each(TRANSPORTS)("broadcast from %s", (transport) => {
  const DATA = { event: "game_starting", countdown: 5, map: { name: "dust²", size: [64, 64] }, note: "line1\r\nline2 🚀" };

  it("reaches every other member exactly once, not the sender, with identical envelopes on ws and Socket.IO", async () => {
    const namespace = unique("cast");
    const sender = await peer(transport, { namespace });
    const receivers = [await peer("ws", { namespace }), await peer("sio", { namespace }), await peer("ws", { namespace }), await peer("sio", { namespace })];
    const outsider = await peer(transport, { namespace: unique("other") });

    await expectOk(sender, "broadcast", { payload: { namespace, data: DATA }, from: "f".repeat(64), ts: 1, extra: true });
    const envelopes = await Promise.all(receivers.map((receiver) => receiver.next("broadcast")));
    const expected = { type: "broadcast", from: sender.fingerprint, namespace, payload: { namespace, data: DATA }, ts: serverTimestamp() };
    for (const envelope of envelopes) {
      expect(envelope).toEqual(expected);
      expect(Object.keys(envelope).sort()).toEqual(["from", "namespace", "payload", "ts", "type"]);
    }
    // A raw-ws and a Socket.IO receiver see the very same envelope, timestamp included.
    expect(envelopes[0]).toEqual(envelopes[1]);
    const quiet = await Promise.all([sender, outsider, ...receivers].map((p) => p.nothing("broadcast")));
    expect(quiet).toEqual([true, true, true, true, true, true]);
  });

  it("skips the fingerprints in exclude", async () => {
    const namespace = unique("excl");
    const sender = await peer(transport, { namespace });
    const [a, b, c] = [await peer("ws", { namespace }), await peer("sio", { namespace }), await peer(transport, { namespace })] as [TestPeer, TestPeer, TestPeer];
    await expectOk(sender, "broadcast", { payload: { namespace, data: { n: 1 }, exclude: [a.fingerprint, b.fingerprint, "0".repeat(64)] } });
    expect(await c.next("broadcast")).toMatchObject({ from: sender.fingerprint, payload: { namespace, data: { n: 1 } } });
    expect(await Promise.all([a, b, c, sender].map((p) => p.nothing("broadcast")))).toEqual([true, true, true, true]);
  });

  it("answers 404 for an unknown namespace, 403 for a non-member, 400 for a bad exclude", async () => {
    const namespace = unique("members");
    const member = await peer("ws", { namespace });
    const outsider = await peer(transport, { namespace: unique("mine") });
    await expectError(outsider, "broadcast", { payload: { namespace: unique("nowhere"), data: 1 } }, 404);
    await expectError(outsider, "broadcast", { payload: { namespace, data: 1 } }, 403);
    await expectError(member, "broadcast", { payload: { namespace, data: 1, exclude: "someone" } }, 400);
    await expectError(member, "broadcast", { payload: { namespace, data: 1, exclude: [42] } }, 400);
    expect(await outsider.nothing("broadcast")).toBe(true);
  });

  it("stops reaching a member after it leaves", async () => {
    const namespace = unique("gone");
    const sender = await peer(transport, { namespace });
    const stays = await peer("sio", { namespace });
    const leaves = await peer("ws", { namespace });
    await expectOk(leaves, "leave", { payload: { namespace } });
    await expectOk(sender, "broadcast", { payload: { namespace, data: "after" } });
    expect((await stays.next("broadcast")).payload).toEqual({ namespace, data: "after" });
    expect(await leaves.nothing("broadcast")).toBe(true);
  });
});
