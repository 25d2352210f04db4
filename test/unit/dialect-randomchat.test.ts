import { describe, expect, it } from "vitest";
import { FrameRate } from "../../src/dialects/randomchat/frame-rate.ts";
import { clientIdOf, errorFrame, groupRoomOf, identityOf, matchedFrame, parseFrame, relayedFrame } from "../../src/dialects/randomchat/wire.ts";

describe("random chat FrameRate (randomchat_max_msg_per_second)", () => {
  it("lets a connection send its rate at once, then that many a second; over it is refused", () => {
    let now = 1_000;
    const rate = new FrameRate(5, () => now);
    const bucket = rate.bucket();
    const taken = (): number => {
      let count = 0;
      while (rate.take(bucket)) count++;
      return count;
    };
    expect(taken()).toBe(5);
    expect(rate.take(bucket)).toBe(false);
    now += 199;
    expect(rate.take(bucket)).toBe(false);
    now += 1;
    expect(rate.take(bucket)).toBe(true);
    now += 1_000;
    expect(taken()).toBe(5);
    // A long pause never saves up more than one second's worth.
    now += 60_000;
    expect(taken()).toBe(5);
  });

  it("keeps one bucket per connection", () => {
    const rate = new FrameRate(1, () => 0);
    const first = rate.bucket();
    const second = rate.bucket();
    expect(rate.take(first)).toBe(true);
    expect(rate.take(first)).toBe(false);
    expect(rate.take(second)).toBe(true);
  });
});

describe("random chat frames", () => {
  const parse = (text: string): ReturnType<typeof parseFrame> => parseFrame(text, 32);

  it("reads each message type the client sends", () => {
    expect(parse('{"type":"available"}')).toEqual({ type: "available" });
    expect(parse('{"type":"next"}')).toEqual({ type: "next" });
    expect(parse('{"type":"leave"}')).toEqual({ type: "leave" });
    expect(parse('{"type":"ping"}')).toEqual({ type: "ping" });
    expect(parse('{"type":"offer","sdp":"v=0"}')).toEqual({ type: "offer", value: "v=0", valueText: '"v=0"' });
    expect(parse('{"type":"answer","sdp":"v=0"}')).toEqual({ type: "answer", value: "v=0", valueText: '"v=0"' });
    expect(parse('{"type":"ice","candidate":{"candidate":"c","sdpMid":null}}')).toEqual({ type: "ice", value: { candidate: "c", sdpMid: null }, valueText: '{"candidate":"c","sdpMid":null}' });
    expect(parse('{"type":"auth","userId":"alice","token":"t"}')).toEqual({ type: "auth", userId: "alice", token: "t" });
    expect(parse('{"type":"auth"}')).toEqual({ type: "auth", userId: undefined, token: undefined });
  });

  it("refuses what is not a message as INVALID_FORMAT and an unknown type as UNKNOWN_TYPE", () => {
    for (const text of ["{not json", "[]", "null", '"available"', "42", '{"sdp":"x"}', '{"type":7}', `{"type":"auth","userId":"${"u".repeat(129)}"}`, '{"type":"auth","userId":5}']) {
      expect(parse(text)).toEqual({ refused: "INVALID_FORMAT" });
    }
    expect(parseFrame('{"type":"offer","sdp":{"a":{"b":{"c":{}}}}}', 4)).toEqual({ refused: "INVALID_FORMAT" });
    expect(parseFrame('{"type":"offer","sdp":{"a":{"b":{}}}}', 4)).toEqual({ type: "offer", value: { a: { b: {} } }, valueText: '{"a":{"b":{}}}' });
    for (const type of ["dance", "__proto__", "constructor", "READY", "matched"]) expect(parse(JSON.stringify({ type }))).toEqual({ refused: "UNKNOWN_TYPE" });
  });

  it("builds the server's frames in the original's shapes", () => {
    expect(JSON.parse(errorFrame("NOT_PAIRED"))).toEqual({ type: "error", code: "NOT_PAIRED", message: expect.any(String) });
    expect(JSON.parse(matchedFrame("room", "partner", true))).toEqual({ type: "matched", roomId: "room", partnerId: "partner", initiator: true });
    expect(JSON.parse(relayedFrame("offer", "id", '"v=0"'))).toEqual({ type: "offer", from: "id", sdp: "v=0" });
    expect(JSON.parse(relayedFrame("ice", "id", '{"candidate":"c"}'))).toEqual({ type: "ice", from: "id", candidate: { candidate: "c" } });
    expect(clientIdOf(identityOf("abc"))).toBe("abc");
    expect(groupRoomOf("s1")).toBe("randomchat/s1");
  });
});
