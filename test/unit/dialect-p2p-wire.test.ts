import { describe, expect, it } from "vitest";
import { forwardedSignal, signalParts } from "../../src/dialects/dialect-connection.ts";
import {
  AuthMessage,
  authError,
  authSuccess,
  decodeFrame,
  idOf,
  peerOfMember,
  readIdentify,
  readRoomId,
  readSignal,
  relayedSignal,
} from "../../src/dialects/p2p/wire.ts";

/** The p2p-go-app wire: what is read from a client's frames and what is written to it. */

describe("p2p wire: reading", () => {
  it("decodes JSON objects only, within max_json_depth", () => {
    expect(decodeFrame('{"type":"IDENTIFY","username":"a"}', 32)).toEqual({ type: "IDENTIFY", username: "a" });
    for (const text of ["{bad", "[1]", '"x"', "null", "7"]) expect(decodeFrame(text, 32)).toBeUndefined();
    expect(decodeFrame('{"a":[[[1]]]}', 4)).toEqual({ a: [[[1]]] });
    expect(decodeFrame('{"a":[[[[1]]]]}', 4)).toBeUndefined();
  });

  it("reads IDENTIFY as the original did: missing or null username is empty, a non-string one is no IDENTIFY", () => {
    expect(readIdentify({ type: "IDENTIFY", username: "alice" })).toEqual({ username: "alice" });
    expect(readIdentify({ type: "IDENTIFY", username: " " })).toEqual({ username: " " });
    expect(readIdentify({ type: "IDENTIFY", username: "é".repeat(64) })).toEqual({ username: "é".repeat(64) });
    expect(readIdentify({ type: "IDENTIFY", username: "a".repeat(65) })).toEqual({ refused: AuthMessage.TooLong });
    expect(readIdentify({ type: "IDENTIFY", username: "" })).toEqual({ refused: AuthMessage.Empty });
    expect(readIdentify({ type: "IDENTIFY" })).toEqual({ refused: AuthMessage.Empty });
    expect(readIdentify({ type: "IDENTIFY", username: null })).toEqual({ refused: AuthMessage.Empty });
    expect(readIdentify({ type: "IDENTIFY", username: 1 })).toEqual({ refused: AuthMessage.NotIdentify });
    expect(readIdentify({ type: "JOIN_ROOM", roomId: "r" })).toEqual({ refused: AuthMessage.NotIdentify });
    expect(readIdentify(undefined)).toEqual({ refused: AuthMessage.NotIdentify });
  });

  it("reads a roomId of 1-64 printable characters; anything else is ignored", () => {
    expect(readRoomId({ roomId: "cool room / ✓" })).toBe("cool room / ✓");
    expect(readRoomId({ roomId: "r".repeat(64) })).toBe("r".repeat(64));
    for (const roomId of [undefined, null, "", 7, {}, "r".repeat(65), "a\nb", "a\u0000", "a\u007f", "a\u0085"]) {
      expect(readRoomId({ roomId })).toBeUndefined();
    }
  });

  it("reads a signal's target and carries its sdp or candidate untouched, never a client's fromPeerId", () => {
    const candidate = { candidate: "candidate:1 1 UDP 1 10.0.0.1 9 typ host", sdpMid: null, sdpMLineIndex: 0, usernameFragment: "u" };
    expect(readSignal("ICE_CANDIDATE", { toPeerId: "b", fromPeerId: "x", iceCandidate: candidate })).toEqual({ toPeerId: "b", value: candidate });
    expect(readSignal("SDP_OFFER", { toPeerId: "b", sdp: { type: "offer", sdp: "v=0" } })).toEqual({ toPeerId: "b", value: { type: "offer", sdp: "v=0" } });
    for (const frame of [{ sdp: { type: "offer" } }, { toPeerId: "", sdp: {} }, { toPeerId: "x".repeat(65), sdp: {} }, { toPeerId: 5, sdp: {} }, { toPeerId: "b", sdp: "v=0" }, { toPeerId: "b" }]) {
      expect(readSignal("SDP_OFFER", frame)).toBeUndefined();
    }
    expect(readSignal("ICE_CANDIDATE", { toPeerId: "b", iceCandidate: null })).toBeUndefined();
  });

  it("names a member by the username in its meta, else by its alias; ids only for p2p identities", () => {
    expect(peerOfMember({ fingerprint: "p2p:1", alias: "p2p/al", app_type: "", meta: { username: "al" }, verified: false })).toEqual({ id: "1", username: "al" });
    expect(peerOfMember({ fingerprint: "p2p:1", alias: "p2p/al", app_type: "", meta: {}, verified: false })).toEqual({ id: "1", username: "al" });
    expect(peerOfMember({ fingerprint: "a".repeat(64), alias: "bold-fox-01", app_type: "", meta: {}, verified: false })).toBeUndefined();
    expect(idOf("pigeon:abc")).toBeUndefined();
  });
});

describe("p2p wire: writing", () => {
  it("writes the original's auth frames, field for field", () => {
    expect(authError(AuthMessage.Taken)).toBe('{"type":"AUTH_ERROR","status":"error","username":"","message":"Username already taken."}');
    expect(authSuccess("alice")).toBe('{"type":"AUTH_SUCCESS","status":"success","username":"alice"}');
  });

  it("rebuilds a relayed frame around the value's text as sent, fields as sent", () => {
    const candidate = '{"candidate":"c","sdpMid":null,"sdpMLineIndex":0,"usernameFragment":"u"}';
    expect(relayedSignal("ICE_CANDIDATE", "a", candidate)).toBe(`{"type":"ICE_CANDIDATE","fromPeerId":"a","iceCandidate":${candidate}}`);
    expect(relayedSignal("SDP_ANSWER", "a", '{"type":"answer","sdp":"v=0"}')).toBe('{"type":"SDP_ANSWER","fromPeerId":"a","sdp":{"type":"answer","sdp":"v=0"}}');
  });
});

describe("a dialect signal forwarded as text", () => {
  it("the core's signal body around a forwarded payload gives back the type, the sender and the value's text untouched", () => {
    const valueText = '{"type":"offer","sdp":"v=0\\r\\n\\u00e9 \\"q\\""}';
    const { payload, payloadJson } = forwardedSignal("SDP_OFFER", JSON.parse(valueText), valueText);
    expect(JSON.parse(payloadJson)).toEqual(payload);
    const body = `{"from":"p2p:a","to":"p2p:b","payload":${payloadJson},"ts":1700000000000}`;
    expect(signalParts(body)).toEqual({ t: "SDP_OFFER", from: "p2p:a", valueText, ts: 1_700_000_000_000 });
    // The same payload serialized again (another node's path) reads the same.
    expect(signalParts(JSON.stringify({ from: "p2p:a", to: "p2p:b", payload, ts: 1 }))?.valueText).toBe(JSON.stringify(JSON.parse(valueText)));
    expect(signalParts('{"from":"p2p:a","payload":{"x":1},"ts":1}')).toBeUndefined();
  });
});
