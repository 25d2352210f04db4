import { describe, expect, it } from "vitest";
import { decodeFrame, encodeRefusal, encodeTargeted } from "../../src/protocol/peer-frames.ts";

describe("peer frames", () => {
  it("a targeted frame carries the payload text untouched, newlines and all, with its header", () => {
    const payloadJson = '{"sdp":"v=0\\r\\nline\\nnext","n":[1,2]}';
    const frame = encodeTargeted("relay", "ab".repeat(32), ["ns:lobby", "ns:odd\nname,\"quoted\""], 17, 1_700_000_000_000, payloadJson);
    expect(decodeFrame(frame)).toEqual({
      kind: "targeted",
      type: "relay",
      from: "ab".repeat(32),
      scopes: ["ns:lobby", 'ns:odd\nname,"quoted"'],
      receivedAt: 17,
      ts: 1_700_000_000_000,
      payloadJson,
    });
  });

  it("a refusal frame carries the ref, code and message", () => {
    expect(decodeFrame(encodeRefusal("signal", 403, "no shared namespace"))).toEqual({ kind: "refusal", ref: "signal", code: 403, message: "no shared namespace" });
  });

  it("anything else is not a frame", () => {
    for (const text of ["", "no newline", "{not json\n{}", '{"a":1}\n', '["t","signal"]\n{}', '["x",1,2,3]\n', '["t","signal","f",1,2,[3]]\n{}', '["r","signal","403","m"]\n']) {
      expect(decodeFrame(text)).toBeUndefined();
    }
  });
});
