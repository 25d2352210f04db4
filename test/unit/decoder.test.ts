import { describe, expect, it } from "vitest";
import { decodeRequest, isRequestType } from "../../src/protocol/decoder.ts";
import { ProtocolError } from "../../src/protocol/errors.ts";

const FP = "Ab".repeat(32);
const fp = FP.toLowerCase();

/** Decodes and expects a 400 whose message names `field`, with `ref` set to the type. */
function expectBad(type: string, envelope: Record<string, unknown>, field: string): void {
  const decoded = decodeRequest(type, envelope);
  expect(decoded).toBeInstanceOf(ProtocolError);
  const error = decoded as ProtocolError;
  expect({ code: error.code, ref: error.ref }).toEqual({ code: 400, ref: type });
  expect(error.message).toContain(field);
}

describe("decodeRequest: a valid example of every request type gives the typed request", () => {
  const VALID: [string, Record<string, unknown>, unknown][] = [
    [
      "register",
      { payload: { public_key: "key", alias: "my_alias-1", meta: { a: 1 } } },
      { type: "register", payload: { publicKey: "key", alias: "my_alias-1", meta: { a: 1 } } },
    ],
    ["register", { payload: { public_key: "key", alias: null } }, { type: "register", payload: { publicKey: "key", alias: undefined, meta: undefined } }],
    [
      "join",
      { payload: { namespace: "game.lobby:eu-1", app_type: "chess", version: "1.0", meta: { skill: 5 } } },
      { type: "join", payload: { namespace: "game.lobby:eu-1", appType: "chess", meta: { skill: 5 } } },
    ],
    ["join", { payload: { namespace: "lobby" } }, { type: "join", payload: { namespace: "lobby", appType: "", meta: undefined } }],
    ["leave", { payload: { namespace: "lobby" } }, { type: "leave", payload: { namespace: "lobby" } }],
    ["signal", { to: FP, payload: { sdp: "v=0" } }, { type: "signal", to: fp, payload: { sdp: "v=0" }, payloadJson: undefined }],
    ["relay", { to: "quiet-cobra-92", payload: {} }, { type: "relay", to: "quiet-cobra-92", payload: {}, payloadJson: undefined }],
    [
      "broadcast",
      { payload: { namespace: "lobby", data: { hi: 1 }, exclude: [FP] } },
      { type: "broadcast", payload: { namespace: "lobby", data: { hi: 1 }, exclude: [fp] } },
    ],
    ["broadcast", { payload: { namespace: "lobby" } }, { type: "broadcast", payload: { namespace: "lobby", data: null, exclude: [] } }],
    ["discover", { payload: { namespace: "lobby" } }, { type: "discover", payload: { namespace: "lobby", limit: 50 } }],
    ["discover", { payload: { namespace: "lobby", limit: 5_000 } }, { type: "discover", payload: { namespace: "lobby", limit: 1_000 } }],
    [
      "match",
      { payload: { namespace: "lobby", group_size: 2, criteria: { mode: "ranked", level: 3, open: true } } },
      { type: "match", payload: { namespace: "lobby", groupSize: 2, criteria: { mode: "ranked", level: 3, open: true } } },
    ],
    ["match", { payload: { namespace: "lobby", group_size: 32 } }, { type: "match", payload: { namespace: "lobby", groupSize: 32, criteria: {} } }],
    ["match_cancel", { payload: { namespace: "lobby" } }, { type: "match_cancel", payload: { namespace: "lobby" } }],
    ["create_room", { payload: { room_id: "room-1", max_size: 99 } }, { type: "create_room", payload: { roomId: "room-1", maxSize: 30 } }],
    ["create_room", {}, { type: "create_room", payload: { roomId: undefined, maxSize: 20 } }],
    ["join_room", { payload: { room_id: "room-1" } }, { type: "join_room", payload: { roomId: "room-1" } }],
    ["room_info", { payload: { room_id: "room-1" } }, { type: "room_info", payload: { roomId: "room-1" } }],
    ["kick", { payload: { room_id: "room-1", fingerprint: FP } }, { type: "kick", payload: { roomId: "room-1", fingerprint: fp } }],
    ["metadata", { payload: { meta: { level: 2, gone: null } } }, { type: "metadata", payload: { meta: { level: 2, gone: null } } }],
    ["ping", {}, { type: "ping" }],
    ["ping", { payload: "anything" }, { type: "ping" }],
  ];

  it.each(VALID)("%s %j", (type, envelope, expected) => {
    expect(decodeRequest(type, envelope)).toEqual(expected);
  });

  it("covers every request type", () => {
    const types = new Set(VALID.map(([type]) => type));
    expect([...types].every(isRequestType)).toBe(true);
    expect(types.size).toBe(15);
  });

  it("keeps a targeted payload's received text, and ignores from, ts, namespace and unknown fields", () => {
    const payloadJson = '{ "sdp" : "v=0" }';
    const envelope: Record<string, unknown> = { to: "peer", payload: { sdp: "v=0" }, from: "someone-else", ts: 1, extra: true };
    const decoded = decodeRequest("signal", envelope, payloadJson);
    expect(decoded).toEqual({ type: "signal", to: "peer", payload: { sdp: "v=0" }, payloadJson });
    expect(decodeRequest("leave", { namespace: "ignored", payload: { namespace: "lobby" } })).toEqual({ type: "leave", payload: { namespace: "lobby" } });
  });

  it("keeps keys such as __proto__ as data", () => {
    const meta = JSON.parse('{"__proto__":{"polluted":true},"constructor":1}') as Record<string, unknown>;
    const decoded = decodeRequest("metadata", { payload: { meta } });
    expect(decoded).toEqual({ type: "metadata", payload: { meta } });
    expect(({} as Record<string, unknown>)["polluted"]).toBeUndefined();
  });
});

describe("decodeRequest: an optional field sent empty reads as absent", () => {
  const EMPTY: [string, Record<string, unknown>, unknown][] = [
    ["register", { payload: { public_key: "key", alias: "" } }, { type: "register", payload: { publicKey: "key", alias: undefined, meta: undefined } }],
    ["register", { payload: { public_key: "key", alias: null } }, { type: "register", payload: { publicKey: "key", alias: undefined, meta: undefined } }],
    ["register", { payload: { public_key: "key", meta: "" } }, { type: "register", payload: { publicKey: "key", alias: undefined, meta: undefined } }],
    ["register", { payload: { public_key: "key", meta: null } }, { type: "register", payload: { publicKey: "key", alias: undefined, meta: undefined } }],
    ["register", { payload: { public_key: "key", meta: {} } }, { type: "register", payload: { publicKey: "key", alias: undefined, meta: {} } }],
    ["join", { payload: { namespace: "n", app_type: "" } }, { type: "join", payload: { namespace: "n", appType: "", meta: undefined } }],
    ["join", { payload: { namespace: "n", app_type: null } }, { type: "join", payload: { namespace: "n", appType: "", meta: undefined } }],
    ["join", { payload: { namespace: "n", version: "" } }, { type: "join", payload: { namespace: "n", appType: "", meta: undefined } }],
    ["join", { payload: { namespace: "n", meta: "" } }, { type: "join", payload: { namespace: "n", appType: "", meta: undefined } }],
    ["join", { payload: { namespace: "n", meta: null } }, { type: "join", payload: { namespace: "n", appType: "", meta: undefined } }],
    ["join", { payload: { namespace: "n", meta: {} } }, { type: "join", payload: { namespace: "n", appType: "", meta: {} } }],
    ["metadata", { payload: { meta: {} } }, { type: "metadata", payload: { meta: {} } }],
    ["discover", { payload: { namespace: "n", limit: 0 } }, { type: "discover", payload: { namespace: "n", limit: 50 } }],
    ["discover", { payload: { namespace: "n", limit: null } }, { type: "discover", payload: { namespace: "n", limit: 50 } }],
    ["create_room", { payload: { room_id: "" } }, { type: "create_room", payload: { roomId: undefined, maxSize: 20 } }],
    ["create_room", { payload: { room_id: null } }, { type: "create_room", payload: { roomId: undefined, maxSize: 20 } }],
    ["create_room", { payload: { max_size: 0 } }, { type: "create_room", payload: { roomId: undefined, maxSize: 20 } }],
    ["create_room", { payload: { max_size: null } }, { type: "create_room", payload: { roomId: undefined, maxSize: 20 } }],
    ["broadcast", { payload: { namespace: "n", exclude: [] } }, { type: "broadcast", payload: { namespace: "n", data: null, exclude: [] } }],
    ["broadcast", { payload: { namespace: "n", exclude: null } }, { type: "broadcast", payload: { namespace: "n", data: null, exclude: [] } }],
    ["broadcast", { payload: { namespace: "n", exclude: "" } }, { type: "broadcast", payload: { namespace: "n", data: null, exclude: [] } }],
    ["match", { payload: { namespace: "n", group_size: 2, criteria: {} } }, { type: "match", payload: { namespace: "n", groupSize: 2, criteria: {} } }],
    ["match", { payload: { namespace: "n", group_size: 2, criteria: null } }, { type: "match", payload: { namespace: "n", groupSize: 2, criteria: {} } }],
    ["match", { payload: { namespace: "n", group_size: 2, criteria: "" } }, { type: "match", payload: { namespace: "n", groupSize: 2, criteria: {} } }],
  ];

  it.each(EMPTY)("%s %j", (type, envelope, expected) => {
    expect(decodeRequest(type, envelope)).toEqual(expected);
  });

  it("a required field sent empty is still refused", () => {
    expectBad("metadata", { payload: { meta: "" } }, "meta");
    expectBad("metadata", { payload: { meta: null } }, "meta");
    expectBad("match", { payload: { namespace: "n", group_size: 0 } }, "group_size");
    expectBad("join", { payload: { namespace: "" } }, "namespace");
    expectBad("join_room", { payload: { room_id: "" } }, "room_id");
  });
});

describe("decodeRequest: each bad field gets 400 naming it", () => {
  const long = (n: number): string => "a".repeat(n);
  const BAD: [string, Record<string, unknown>, string][] = [
    ["register", { payload: "key" }, "payload"],
    ["register", { payload: {} }, "public_key"],
    ["register", { payload: { public_key: "" } }, "public_key"],
    ["register", { payload: { public_key: 5 } }, "public_key"],
    ["register", { payload: { public_key: long(16_385) } }, "public_key"],
    ["register", { payload: { public_key: "k", alias: 5 } }, "alias"],
    ["register", { payload: { public_key: "k", alias: "has space" } }, "alias"],
    ["register", { payload: { public_key: "k", alias: " " } }, "alias"],
    ["register", { payload: { public_key: "k", alias: long(33) } }, "alias"],
    ["register", { payload: { public_key: "k", alias: FP } }, "alias"],
    ["register", { payload: { public_key: "k", meta: "x" } }, "meta"],
    ["register", { payload: { public_key: "k", meta: { big: long(4_100) } } }, "meta"],
    ["join", { payload: [] }, "payload"],
    ["join", { payload: {} }, "namespace"],
    ["join", { payload: { namespace: "has space" } }, "namespace"],
    ["join", { payload: { namespace: long(65) } }, "namespace"],
    ["join", { payload: { namespace: "n", app_type: 5 } }, "app_type"],
    ["join", { payload: { namespace: "n", app_type: long(65) } }, "app_type"],
    ["join", { payload: { namespace: "n", version: 1 } }, "version"],
    ["join", { payload: { namespace: "n", meta: [1] } }, "meta"],
    ["leave", { payload: { namespace: true } }, "namespace"],
    ["signal", { payload: {} }, "to"],
    ["signal", { to: "", payload: {} }, "to"],
    ["signal", { to: 123, payload: {} }, "to"],
    ["relay", { to: long(129), payload: {} }, "to"],
    ["relay", { to: "peer", payload: "v=0" }, "payload"],
    ["relay", { to: "peer" }, "payload"],
    ["signal", { to: "peer", payload: [1] }, "payload"],
    ["broadcast", { payload: 7 }, "payload"],
    ["broadcast", { payload: { data: 1 } }, "namespace"],
    ["broadcast", { payload: { namespace: "n", exclude: FP } }, "exclude"],
    ["broadcast", { payload: { namespace: "n", exclude: [5] } }, "exclude"],
    ["broadcast", { payload: { namespace: "n", exclude: Array.from({ length: 1_001 }, () => FP) } }, "exclude"],
    ["discover", { payload: { namespace: ["n"] } }, "namespace"],
    ["discover", { payload: { namespace: "n", limit: "10" } }, "limit"],
    ["discover", { payload: { namespace: "n", limit: -1 } }, "limit"],
    ["discover", { payload: { namespace: "n", limit: "" } }, "limit"],
    ["match", { payload: { group_size: 2 } }, "namespace"],
    ["match", { payload: { namespace: "n" } }, "group_size"],
    ["match", { payload: { namespace: "n", group_size: "2" } }, "group_size"],
    ["match", { payload: { namespace: "n", group_size: 2.5 } }, "group_size"],
    ["match", { payload: { namespace: "n", group_size: 1 } }, "group_size"],
    ["match", { payload: { namespace: "n", group_size: 33 } }, "group_size"],
    ["match", { payload: { namespace: "n", group_size: 2, criteria: "ranked" } }, "criteria"],
    ["match", { payload: { namespace: "n", group_size: 2, criteria: { mode: { ranked: true } } } }, "criteria"],
    ["match", { payload: { namespace: "n", group_size: 2, criteria: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, i])) } }, "criteria"],
    ["match_cancel", { payload: { namespace: 5 } }, "namespace"],
    ["create_room", { payload: { room_id: 5 } }, "room_id"],
    ["create_room", { payload: { max_size: "10" } }, "max_size"],
    ["create_room", { payload: { max_size: 1 } }, "max_size"],
    ["create_room", { payload: { max_size: -1 } }, "max_size"],
    ["create_room", { payload: { room_id: " " } }, "room_id"],
    ["join_room", { payload: { room_id: null } }, "room_id"],
    ["room_info", { payload: { room_id: ["r"] } }, "room_id"],
    ["kick", { payload: { room_id: "r", fingerprint: 5 } }, "fingerprint"],
    ["kick", { payload: { room_id: "r", fingerprint: "not-hex" } }, "fingerprint"],
    ["kick", { payload: { fingerprint: FP } }, "room_id"],
    ["metadata", { payload: {} }, "meta"],
    ["metadata", { payload: { meta: "level=2" } }, "meta"],
    ["metadata", { payload: 7 }, "payload"],
  ];

  it.each(BAD)("%s %j", (type, envelope, field) => expectBad(type, envelope, field));

  it.each(["teleport", "PING", "", "__proto__", "constructor", "hasOwnProperty", "toString"])("the unknown type %j gets 400 with ref", (type) => {
    const decoded = decodeRequest(type, {});
    expect(decoded).toBeInstanceOf(ProtocolError);
    expect(decoded).toMatchObject({ code: 400, ref: type });
    expect(isRequestType(type)).toBe(false);
  });

  it("a validator that fails unexpectedly yields 500 with the cause, never a throw", () => {
    const envelope = {
      get payload(): never {
        throw new TypeError("boom");
      },
    };
    const decoded = decodeRequest("join", envelope);
    expect(decoded).toMatchObject({ code: 500, ref: "join" });
    expect((decoded as ProtocolError).cause).toBeInstanceOf(TypeError);
  });
});
