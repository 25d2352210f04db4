import { Encoder, PacketType } from "socket.io-parser";
import { describe, expect, it } from "vitest";
import { encodeRaw, socketIoPacketToRaw, spliceType, type Body } from "../../src/protocol/envelope.ts";

/** What Socket.IO itself writes for `io.emit(type, body)` on the default namespace. */
function socketIoEncode(type: string, ...args: unknown[]): string {
  const [packet] = new Encoder().encode({ type: PacketType.EVENT, nsp: "/", data: [type, ...args] });
  if (typeof packet !== "string") throw new Error("expected a text packet");
  return packet;
}

const BODIES: Body[] = [
  {},
  { ts: 1_707_849_600_000 },
  { from: "a".repeat(64), to: "b".repeat(64), payload: { signal_type: "offer", sdp: "v=0\r\no=- 123" }, ts: 1 },
  { from: "f", namespace: "game-lobby", payload: { namespace: "game-lobby", data: { nested: [1, "two", null, { three: true }] } } },
  { payload: { text: "quotes \" and \\ backslashes, unicode é 🎲, a } and a ] and \",\"" } },
  { payload: [] },
  { payload: "a string payload" },
];

describe("encodeRaw", () => {
  it.each(BODIES)("gives the envelope {type, ...body} for %j", (body) => {
    const text = encodeRaw("signal", body);
    expect(JSON.parse(text)).toEqual({ type: "signal", ...JSON.parse(JSON.stringify(body)) });
  });

  it("puts type first so a reader sees it before the payload", () => {
    expect(encodeRaw("pong", { ts: 5 })).toBe('{"type":"pong","ts":5}');
    expect(Object.keys(JSON.parse(encodeRaw("peer_left", { from: "x", namespace: "n" })) as object)).toEqual(["type", "from", "namespace"]);
  });

  it("an empty body gives just the type", () => {
    expect(encodeRaw("pong", {})).toBe('{"type":"pong"}');
  });

  it("fields set to undefined are left out, as JSON.stringify does", () => {
    expect(JSON.parse(encodeRaw("error", { from: undefined, payload: { code: 400 } }))).toEqual({ type: "error", payload: { code: 400 } });
    expect(encodeRaw("pong", { ts: undefined })).toBe('{"type":"pong"}');
  });
});

describe("spliceType", () => {
  it("prepends type to a serialized object", () => {
    expect(spliceType("relay", '{"a":1}')).toBe('{"type":"relay","a":1}');
    expect(spliceType("relay", "{}")).toBe('{"type":"relay"}');
  });
});

describe("socketIoPacketToRaw", () => {
  it.each(BODIES.filter((body) => body.payload === undefined || typeof body.payload === "object"))(
    "turns Socket.IO's own encoding of an event with body %j into the same envelope the raw endpoint sends",
    (body) => {
      const packet = socketIoEncode("broadcast", body);
      const raw = socketIoPacketToRaw(packet);
      expect(raw).toBeDefined();
      expect(JSON.parse(raw as string)).toEqual({ type: "broadcast", ...JSON.parse(JSON.stringify(body)) });
      expect(raw).toBe(encodeRaw("broadcast", body));
    },
  );

  it.each(["peer_joined", "peer_left", "matched", "kick", "signal"])("keeps the event name %s as the type", (type) => {
    expect(JSON.parse(socketIoPacketToRaw(socketIoEncode(type, { from: "x" })) as string)).toEqual({ type, from: "x" });
  });

  it("an event with an empty body gives just the type", () => {
    expect(socketIoPacketToRaw(socketIoEncode("pong", {}))).toBe('{"type":"pong"}');
  });

  it.each([
    ["a non-default namespace", (): string => new Encoder().encode({ type: PacketType.EVENT, nsp: "/chat", data: ["x", { a: 1 }] })[0] as string],
    ["an event with an ack id", (): string => new Encoder().encode({ type: PacketType.EVENT, nsp: "/", id: 7, data: ["x", { a: 1 }] })[0] as string],
    ["an ack packet", (): string => new Encoder().encode({ type: PacketType.ACK, nsp: "/", id: 7, data: [{ a: 1 }] })[0] as string],
    ["a connect packet", (): string => new Encoder().encode({ type: PacketType.CONNECT, nsp: "/", data: { sid: "abc" } })[0] as string],
    ["a disconnect packet", (): string => new Encoder().encode({ type: PacketType.DISCONNECT, nsp: "/" })[0] as string],
    ["an event without arguments", (): string => socketIoEncode("x")],
    ["an event whose argument is a string", (): string => socketIoEncode("x", "text")],
    ["an event whose argument is an array", (): string => socketIoEncode("x", [1, 2])],
    ["an event whose argument is a number", (): string => socketIoEncode("x", 5)],
  ])("returns undefined for %s", (_name, make) => {
    expect(socketIoPacketToRaw(make())).toBeUndefined();
  });

  it("returns undefined for a binary event header", () => {
    const parts = new Encoder().encode({ type: PacketType.EVENT, nsp: "/", data: ["x", { blob: Buffer.from([1, 2, 3]) }] });
    expect(typeof parts[0]).toBe("string");
    expect(socketIoPacketToRaw(parts[0] as string)).toBeUndefined();
  });

  it.each(["", "2", '2["', '2["x",{"a":1}', "4{}", 'garbage["x",{}]'])("returns undefined for the malformed packet %j", (packet) => {
    expect(socketIoPacketToRaw(packet)).toBeUndefined();
  });
});
