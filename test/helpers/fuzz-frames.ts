import fc from "fast-check";
import { arr, lit, obj, ref, write, writeObject, type Entry, type Json, type RunContext } from "./fuzz-json.ts";
import { MAX_MESSAGE_SIZE, REQUEST_TYPES, type Frame, type SioPacket } from "./fuzz-protocol.ts";
import { alias, anyValue, criteria, exclude, fingerprint, json, meta, name, oddNumber, protoKey, protoObject, publicKey, signalPayload, signature, smallJson, target } from "./fuzz-values.ts";

/** Event names Socket.IO reserves, and `error`, which its clients treat specially. */
const RESERVED_EVENTS = ["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener", "error"] as const;

/**
 * fast-check arbitraries for the frames of the fuzz suite, one per family. Everything is built
 * from combinators that shrink (no `chain`), so a failure shrinks to a short batch of simple frames.
 */

interface Field {
  readonly key: string;
  readonly value: fc.Arbitrary<Json>;
  readonly optional: boolean;
}

const field = (key: string, value: fc.Arbitrary<Json>, optional = false): Field => ({ key, value, optional });

/** The payload fields of each request type, with plausible values. */
const PAYLOADS: Record<string, readonly Field[]> = {
  challenge: [],
  register: [field("public_key", publicKey), field("alias", alias, true), field("meta", meta, true), field("signature", signature, true)],
  join: [field("namespace", name), field("app_type", fc.oneof(fc.string({ maxLength: 70 }).map(lit), anyValue), true), field("version", fc.string({ maxLength: 8 }).map(lit), true), field("meta", meta, true)],
  leave: [field("namespace", name)],
  broadcast: [field("namespace", name), field("data", smallJson, true), field("exclude", exclude, true)],
  discover: [field("namespace", name), field("limit", fc.oneof(fc.integer({ min: -5, max: 1_500 }).map(lit), oddNumber), true)],
  match: [field("namespace", name), field("group_size", fc.oneof(fc.integer({ min: 0, max: 40 }).map(lit), oddNumber)), field("criteria", criteria, true)],
  match_cancel: [field("namespace", name)],
  create_room: [field("room_id", name, true), field("max_size", fc.oneof(fc.integer({ min: -2, max: 50 }).map(lit), oddNumber), true)],
  join_room: [field("room_id", name)],
  room_info: [field("room_id", name)],
  kick: [field("room_id", name), field("fingerprint", fingerprint)],
  metadata: [field("meta", meta)],
  ping: [],
};

const TARGETED = new Set(["signal", "relay"]);
const env = (entries: readonly Entry[]): Frame => ({ f: "env", entries });

/** Top-level fields a client may add that the server must ignore (or refuse), never forward. */
const extraTopLevel: fc.Arbitrary<Entry[]> = fc
  .array(fc.oneof(fc.tuple(fc.constantFrom("from", "ts", "namespace", "id", "ack"), anyValue), fc.tuple(protoKey, anyValue)), { maxLength: 2 })
  .map((entries) => entries as Entry[]);

const payloadOf = (type: string): fc.Arbitrary<Json> =>
  TARGETED.has(type)
    ? signalPayload
    : fc.tuple(...(PAYLOADS[type] ?? []).map((f) => (f.optional ? fc.option(f.value, { nil: undefined }) : f.value))).map((values) =>
        obj((PAYLOADS[type] ?? []).flatMap((f, i): Entry[] => (values[i] === undefined ? [] : [[f.key, values[i] as Json]]))),
      );

/** A request of `type` with plausible, random fields. */
const plausible = (type: string): fc.Arbitrary<Frame> =>
  fc.tuple(TARGETED.has(type) ? target.map((to): Entry[] => [["to", to]]) : fc.constant([] as Entry[]), payloadOf(type), extraTopLevel).map(([to, payload, extra]) => ({
    f: "env",
    entries: [["type", lit(type)], ...to, ["payload", payload], ...extra],
  }));

export const plausibleRequest: fc.Arbitrary<Frame> = fc.oneof(...REQUEST_TYPES.map(plausible));

// ---------------------------------------------------------------- one field of the wrong kind

/** A request of `type` where one field (envelope or payload) holds anything at all. */
const wrongField = (type: string): fc.Arbitrary<Frame> => {
  const slots = ["type", "to", "namespace", "payload", ...(PAYLOADS[type] ?? []).map((f) => `payload.${f.key}`), "payload.<proto>", "payload.<extra>"];
  return fc.tuple(plausible(type), fc.constantFrom(...slots), anyValue, protoKey).map(([frame, slot, value, proto]): Frame => {
    if (frame.f !== "env") return frame;
    if (!slot.startsWith("payload.")) return { f: "env", entries: [...frame.entries.filter(([k]) => k !== slot), [slot, value]] };
    const payloadEntry = frame.entries.find(([k]) => k === "payload")?.[1];
    const payloadEntries = payloadEntry?.j === "obj" ? payloadEntry.entries : [];
    const fieldKey = slot === "payload.<proto>" ? proto : slot === "payload.<extra>" ? "unexpected" : slot.slice("payload.".length);
    const newPayload = obj([...payloadEntries.filter(([k]) => k !== fieldKey), [fieldKey, value]]);
    return { f: "env", entries: frame.entries.map(([k, v]): Entry => [k, k === "payload" ? newPayload : v]) };
  });
};

export const wrongFieldRequest: fc.Arbitrary<Frame> = fc.oneof(...REQUEST_TYPES.map(wrongField));

/** Requests whose payload, meta or criteria use prototype names as keys, or whose names are prototype names. */
const protoRequest: fc.Arbitrary<Frame> = fc.oneof(
  fc.tuple(fc.constantFrom(...REQUEST_TYPES), protoObject).map(([type, payload]) => env([["type", lit(type)], ["payload", payload]])),
  fc.tuple(publicKey, protoObject).map(([k, m]) => env([["type", lit("register")], ["payload", obj([["public_key", k], ["meta", m]])]])),
  fc.tuple(name, protoObject).map(([n, m]) => env([["type", lit("join")], ["payload", obj([["namespace", n], ["meta", m]])]])),
  protoObject.map((m) => env([["type", lit("metadata")], ["payload", obj([["meta", m]])]])),
  protoObject.map((c) => env([["type", lit("match")], ["payload", obj([["namespace", ref("shared")], ["group_size", lit(2)], ["criteria", c]])]])),
  fc.tuple(fc.constantFrom(...REQUEST_TYPES), protoKey, fc.constantFrom("namespace", "room_id", "alias")).map(([type, p, k]) => env([["type", lit(type)], ["payload", obj([[k, lit(p)], ["public_key", ref("key", "p")]])]])),
  fc.tuple(fc.constantFrom("signal", "relay"), protoKey).map(([type, p]) => env([["type", lit(type)], ["to", lit(p)], ["payload", obj([])]])),
  protoKey.map((p) => env([["type", lit(p)], ["payload", obj([])]])),
);

// ---------------------------------------------------------------- deep nesting

/** Units a deep value repeats: one or two levels each. */
const DEEP_UNITS: readonly (readonly [string, string, number])[] = [
  ["[", "]", 1],
  ['{"a":', "}", 1],
  ['[{"k":', "}]", 2],
  ['{"__proto__":', "}", 1],
  ["[ ", " ]", 1],
  ['{"constructor":[', "]}", 2],
];
/** Room for the rest of the frame (envelope, Socket.IO packet prefix). */
const DEEP_BYTES = MAX_MESSAGE_SIZE - 4_000;
const MAX_DEEP_LEVELS = 20_000;

/** A value nested `levels` deep: mostly around the limit, sometimes up to what fits in a frame. */
export const deepValue: fc.Arbitrary<Json> = fc
  .tuple(
    fc.constantFrom(...DEEP_UNITS),
    fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 1, max: 40 }) }, { weight: 2, arbitrary: fc.integer({ min: 41, max: 2_000 }) }, { weight: 1, arbitrary: fc.integer({ min: 2_001, max: MAX_DEEP_LEVELS }) }),
    fc.constantFrom(lit(1), lit("x"), lit(null), obj([]), arr([]), lit(true)),
  )
  .map(([[open, close, levelsPerUnit], levels, leaf]): Json => {
    const fit = Math.floor(DEEP_BYTES / (open.length + close.length));
    const units = Math.max(1, Math.min(Math.ceil(levels / levelsPerUnit), fit, Math.floor(MAX_DEEP_LEVELS / levelsPerUnit)));
    return { j: "deep", open, close, units, leaf };
  });

/** Requests with a deep value where the protocol carries client data: payload, meta, data, criteria, signal payload, or any field. */
export const deepRequest: fc.Arbitrary<Frame> = fc.oneof(
  fc.tuple(publicKey, deepValue).map(([k, d]) => env([["type", lit("register")], ["payload", obj([["public_key", k], ["meta", d]])]])),
  fc.tuple(name, deepValue).map(([n, d]) => env([["type", lit("join")], ["payload", obj([["namespace", n], ["meta", d]])]])),
  deepValue.map((d) => env([["type", lit("metadata")], ["payload", obj([["meta", d]])]])),
  deepValue.map((d) => env([["type", lit("broadcast")], ["payload", obj([["namespace", ref("shared")], ["data", d]])]])),
  deepValue.map((d) => env([["type", lit("match")], ["payload", obj([["namespace", ref("shared")], ["group_size", lit(2)], ["criteria", d]])]])),
  fc.tuple(fc.constantFrom("signal", "relay"), target, deepValue).map(([type, to, d]) => env([["type", lit(type)], ["to", to], ["payload", obj([["signal_type", lit("offer")], ["sdp", d]])]])),
  fc.tuple(fc.constantFrom("signal", "relay"), target, deepValue).map(([type, to, d]) => env([["type", lit(type)], ["to", to], ["payload", d]])),
  fc.tuple(fc.constantFrom(...REQUEST_TYPES), deepValue).map(([type, d]) => env([["type", lit(type)], ["payload", d]])),
  fc.tuple(fc.constantFrom(...REQUEST_TYPES), fc.constantFrom("to", "namespace", "from", "extra", "__proto__"), deepValue).map(([type, k, d]) => env([["type", lit(type)], [k, d]])),
  fc.tuple(fc.constantFrom(...REQUEST_TYPES), deepValue).map(([type, d]) => env([["type", lit(type)], ["payload", obj([["namespace", ref("shared")], ["room_id", d], ["namespace", d]])]])),
);

// ---------------------------------------------------------------- frames that are not an envelope

const TEMPLATES = ['{"type":"ping"}', '{"type":"join","payload":{"namespace":"lobby","meta":{"a":[1,2]}}}', '{"type":"signal","to":"x","payload":{"sdp":"v=0\\r\\n"}}', '{"type":"register","payload":{"public_key":"k"}}'];

const ODD_TEXTS = [
  "{'type':'ping'}",
  "{type:ping}",
  '{"type":"ping",}',
  '{"type":"ping"}x',
  '{"type":"ping"}{"type":"ping"}',
  '\ufeff{"type":"ping"}',
  '{"type":"ping"/*c*/}',
  '{"type":"pi\\ng"}',
  '{"type":"\\ud800"}',
  '{"type":"ping\\u0000"}',
  '  {"type":"ping"}\n',
  '{"type":"ping","payload":}',
  '{"type":"ping","type":"teleport"}',
  '{"type":"teleport","type":"ping"}',
  '{"TYPE":"ping"}',
  "NaN",
  "undefined",
  "",
  "[",
  "]",
  "{",
  "}",
  '"',
  '""',
  "null",
  "true",
  "0",
  "-0",
  "1e400",
  "[]",
  '[{"type":"ping"}]',
  '["ping",{}]',
  "{}",
  '{"":""}',
  '{"__proto__":{"type":"ping"}}',
  '{"constructor":{"prototype":{"type":"ping"}}}',
];

/** Texts that are not a JSON object with a known type: invalid, truncated, other JSON values. */
export const notAnEnvelope: fc.Arbitrary<Frame> = fc.oneof(
  fc.tuple(fc.constantFrom(...TEMPLATES), fc.nat()).map(([text, cut]): Frame => ({ f: "text", text: text.slice(0, cut % text.length) })),
  fc.constantFrom(...ODD_TEXTS).map((text): Frame => ({ f: "text", text })),
  fc.string({ unit: "binary", maxLength: 60 }).map((text): Frame => ({ f: "text", text })),
  fc.jsonValue({ maxDepth: 3 }).map((value): Frame => ({ f: "text", text: JSON.stringify(value) ?? "null" })),
  // A known-looking envelope whose type is of the wrong kind, missing, unknown, or a prototype name.
  fc.tuple(anyValue, smallJson).map(([type, payload]) => env([["type", type], ["payload", payload]])),
  smallJson.map((payload) => env([["payload", payload]])),
  fc
    .tuple(fc.oneof(protoKey, fc.constantFrom("PING", "Ping", " ping", "ping ", "error", "pong", "registered", "peer_list", "ok", "kick_all", ""), fc.string({ maxLength: 12 })), smallJson)
    .map(([type, payload]) => env([["type", lit(type)], ["payload", payload]])),
  fc.uint8Array({ maxLength: 64 }).map((bytes): Frame => ({ f: "binary", bytes })),
  fc.constantFrom(...TEMPLATES).map((text): Frame => ({ f: "binary", bytes: new Uint8Array(Buffer.from(text)) })),
);

// ---------------------------------------------------------------- Socket.IO packets

const sio = (packet: SioPacket): Frame => ({ f: "sio", packet });
const emptyArg = obj([]);
const ackMode = fc.constantFrom<"ack" | "none">("ack", "none");

/**
 * Socket.IO packets no well-behaved client sends (and a zero-argument event, which is valid).
 * Never a packet Socket.IO closes on by design: one for another namespace, a second CONNECT, a
 * DISCONNECT without data.
 */
export const badSocketIoPacket: fc.Arbitrary<Frame> = fc.oneof(
  fc.tuple(fc.constantFrom(...RESERVED_EVENTS), ackMode).map(([event, id]) => sio({ p: "event", event: lit(event), args: [emptyArg], id })),
  fc.tuple(oddNumber, fc.constantFrom(...REQUEST_TYPES)).map(([event]) => sio({ p: "event", event, args: [emptyArg], id: "ack" })),
  fc.tuple(fc.constantFrom(...REQUEST_TYPES), fc.array(fc.oneof(anyValue, json(emptyArg)), { maxLength: 3 })).map(([event, args]) => sio({ p: "event", event: lit(event), args, id: "ack" })),
  fc.tuple(fc.constantFrom(...REQUEST_TYPES), anyValue).map(([event, arg]) => sio({ p: "event", event: lit(event), args: [arg], id: "ack" })),
  fc
    .tuple(
      fc.constantFrom(...REQUEST_TYPES),
      fc.array(fc.uint8Array({ maxLength: 16 }), { minLength: 1, maxLength: 3 }),
      fc.integer({ min: -1, max: 3 }),
      fc.boolean(),
      ackMode,
    )
    .map(([event, attachments, num, nested, id]) => {
      const placeholder = obj([["_placeholder", lit(true)], ["num", lit(num)]]);
      return sio({ p: "binaryEvent", event: lit(event), args: [nested ? obj([["payload", obj([["data", placeholder]])]]) : placeholder], attachments, id });
    }),
  fc.stringMatching(/^[1-9][0-9]{16,40}$/).map((huge) => sio({ p: "event", event: lit("ping"), args: [emptyArg], id: { huge } })),
  fc
    .tuple(fc.constantFrom('["ping",{}', '["ping",{]', "{bad", '["ping",]', "[\"ping\",{'a':1}]", '["ping"}', "", "x", '{"type":"ping"}', "null", '"ping"', "[]", "[[]]", '[null,{}]'), ackMode)
    .map(([data, id]) => sio({ p: "data", data, id })),
  fc.tuple(fc.constantFrom('["ping",{}]', '["join",{"payload":{}}]'), fc.nat()).map(([text, cut]) => sio({ p: "data", data: text.slice(0, cut % text.length), id: "ack" })),
  fc.tuple(fc.constantFrom("7", "8", "9"), fc.constantFrom('["ping",{}]', "", "[]", "{}")).map(([digit, data]) => sio({ p: "otherType", digit, data })),
  fc.tuple(fc.constantFrom("4", "1"), fc.constantFrom('{"message":"x"}', '"x"', '["ping",{}]', "{}")).map(([digit, data]) => sio({ p: "otherType", digit, data })),
);

// ---------------------------------------------------------------- families and batches

/** Upper bound of a frame's size with any run's references resolved: frames must never be oversize here. */
const WORST_CONTEXT: RunContext = { shared: "s".repeat(40), token: "t".repeat(24), witnessFp: "f".repeat(64), witnessAlias: "a".repeat(32), selfFp: "e".repeat(64) };
const SIZE_BUDGET = MAX_MESSAGE_SIZE - 512;

export function fitsInFrame(frame: Frame): boolean {
  switch (frame.f) {
    case "env":
      return Buffer.byteLength(writeObject(frame.entries, WORST_CONTEXT)) <= SIZE_BUDGET;
    case "text":
      return Buffer.byteLength(frame.text) * 2 + 2 <= SIZE_BUDGET;
    case "binary":
      return frame.bytes.length <= SIZE_BUDGET;
    case "sio": {
      const packet = frame.packet;
      if (packet.p === "data" || packet.p === "otherType") return Buffer.byteLength(packet.data) * 2 + 2 <= SIZE_BUDGET;
      const items = [...(packet.p === "event" && packet.event === undefined ? [] : [packet.event as Json]), ...packet.args];
      return Buffer.byteLength(write(arr(items), WORST_CONTEXT)) <= SIZE_BUDGET;
    }
  }
}

export type Family = "malformed" | "fields" | "deep" | "plausible" | "mixed";

/** The frames of each family, for /ws (`sio: false`) or Socket.IO. */
export function frames(family: Family, forSocketIo: boolean): fc.Arbitrary<Frame> {
  const malformed = forSocketIo ? fc.oneof(notAnEnvelope, badSocketIoPacket, badSocketIoPacket) : notAnEnvelope;
  const fields = fc.oneof(wrongFieldRequest, wrongFieldRequest, protoRequest);
  const arbitrary = {
    malformed,
    fields,
    deep: deepRequest,
    plausible: plausibleRequest,
    mixed: fc.oneof(malformed, fields, deepRequest, plausibleRequest, plausibleRequest),
  }[family];
  return arbitrary.filter(fitsInFrame);
}

/** One run of a property: a fresh connection, registered (and in the shared namespace) or not, then a batch of frames. */
export interface Batch {
  readonly registered: boolean;
  readonly frames: readonly Frame[];
}

export const batch = (family: Family, forSocketIo: boolean, maxFrames: number): fc.Arbitrary<Batch> =>
  fc.record({ registered: fc.boolean(), frames: fc.array(frames(family, forSocketIo), { minLength: 1, maxLength: maxFrames, size: "max" }) });
