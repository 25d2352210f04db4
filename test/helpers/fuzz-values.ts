import fc from "fast-check";
import { arr, lit, obj, raw, ref, type Entry, type Json } from "./fuzz-json.ts";

/**
 * fast-check arbitraries for the values frames are made of: values of the wrong kind for any
 * field, and plausible values for each field of the protocol. Names, keys and fingerprints refer
 * to the run (see Ref) so that runs never collide. Built from combinators that shrink.
 */

export const PROTO_KEYS = ["__proto__", "constructor", "prototype", "toString", "hasOwnProperty", "valueOf", "isPrototypeOf", "__defineGetter__", "toJSON"] as const;

export const protoKey = fc.constantFrom(...PROTO_KEYS);
export const json = (value: Json): fc.Arbitrary<Json> => fc.constant(value);

// ---------------------------------------------------------------- values of the wrong kind

export const oddNumber: fc.Arbitrary<Json> = fc.oneof(
  fc.constantFrom(0, 1, -1, 2, 1.5, -2.5, 1e308, -1e308, 5e-324, 2 ** 53 + 2, -(2 ** 31), 2 ** 32, 1e21, 31, 32, 33, 1000, 1001).map(lit),
  // JSON that JSON.stringify cannot write: negative zero, numbers that parse to Infinity or to 0, 30 digits.
  fc.constantFrom("-0", "1e400", "-1e400", "1E2", "2.0", "-0.0", "1e-400", "123456789012345678901234567890", "0.2e1").map(raw),
  fc.integer().map(lit),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map(lit),
);

const longString: fc.Arbitrary<Json> = fc
  .tuple(fc.constantFrom("x", "é", "💥", "ab"), fc.integer({ min: 65, max: 3_000 }))
  .map(([unit, count]) => lit(unit.repeat(count)));

const oddString: fc.Arbitrary<Json> = fc.oneof(
  fc.constantFrom("", " ", "NaN", "Infinity", "-Infinity", "undefined", "null", "true", "0", "-0", "1e999", "0x10", "\u0000", "\ud800", "\udfff\ud800", "💥", "\u202e", "a b", "../..", "%00", "PING", " ping").map(lit),
  fc.string({ unit: "binary", maxLength: 40 }).map(lit),
  protoKey.map(lit),
  longString,
);

const oddScalar: fc.Arbitrary<Json> = fc.oneof(oddNumber, oddString, fc.boolean().map(lit), json(lit(null)));

const key: fc.Arbitrary<string> = fc.oneof(protoKey, fc.constantFrom("a", "type", "payload", "meta", "namespace", "", "$ref", "0"), fc.string({ unit: "binary", maxLength: 8 }));

/** Small JSON of any shape, with prototype keys among its object keys. */
export const smallJson: fc.Arbitrary<Json> = fc.letrec<{ value: Json }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", maxDepth: 3 },
    oddScalar,
    fc.array(tie("value"), { maxLength: 4 }).map(arr),
    fc.array(fc.tuple(key, tie("value")), { maxLength: 4 }).map(obj),
  ),
})).value;

/** An object whose keys are prototype names. */
export const protoObject: fc.Arbitrary<Json> = fc.array(fc.tuple(protoKey, oddScalar), { minLength: 1, maxLength: 4 }).map(obj);

const oddContainer: fc.Arbitrary<Json> = fc.oneof(
  fc.constantFrom(arr([]), arr([lit(1)]), arr([lit("x")]), arr([obj([])]), obj([]), obj([["a", lit(1)]]), arr([lit(null)])),
  protoObject,
  smallJson,
);

/** Anything a field could hold, mostly of the wrong kind. */
export const anyValue: fc.Arbitrary<Json> = fc.oneof(oddScalar, oddContainer);

// ---------------------------------------------------------------- plausible field values

const suffix = fc.stringMatching(/^[a-z0-9_-]{0,6}$/);

/** Namespace and room names: this run's own, the lane's shared one, valid ones anybody may use, prototype names, invalid ones. */
export const name: fc.Arbitrary<Json> = fc.oneof(
  { weight: 4, arbitrary: suffix.map((s) => ref("own", s)) },
  { weight: 3, arbitrary: json(ref("shared")) },
  { weight: 1, arbitrary: fc.stringMatching(/^[A-Za-z0-9_.:-]{1,64}$/).map(lit) },
  { weight: 1, arbitrary: protoKey.map(lit) },
  { weight: 1, arbitrary: fc.constantFrom("", "a".repeat(65), "with space", "ü", "a/b", "a\u0000").map(lit) },
);

export const alias: fc.Arbitrary<Json> = fc.oneof(
  { weight: 3, arbitrary: suffix.map((s) => ref("own", s)) },
  { weight: 2, arbitrary: fc.stringMatching(/^[A-Za-z0-9_-]{1,32}$/).map(lit) },
  { weight: 1, arbitrary: fc.constantFrom(ref("witnessAlias"), ref("witnessFp"), ref("selfFp")) },
  { weight: 1, arbitrary: fc.constantFrom("", ...PROTO_KEYS, "a".repeat(33), "with space", "ü").map(lit) },
  { weight: 1, arbitrary: json(lit(null)) },
);

/** A public key of this run only (two runs with one key would replace each other's connection). */
export const publicKey: fc.Arbitrary<Json> = fc.oneof(
  { weight: 6, arbitrary: suffix.map((s) => ref("key", s)) },
  { weight: 1, arbitrary: fc.integer({ min: 16_370, max: 16_400 }).map((n) => ref("key", "k".repeat(n))) },
  { weight: 1, arbitrary: json(lit("")) },
);

/** A register's proof: base64 that proves nothing (401, with or without a nonce asked for), text that is not base64 (400), and empties. */
export const signature: fc.Arbitrary<Json> = fc.oneof(
  { weight: 3, arbitrary: fc.stringMatching(/^[A-Za-z0-9+/_-]{1,120}={0,2}$/).map(lit) },
  { weight: 1, arbitrary: fc.constantFrom("", "not base64!", "A".repeat(257), "=AAA", "ü").map(lit) },
  { weight: 1, arbitrary: json(lit(null)) },
);

const hex64 = fc.stringMatching(/^[0-9a-f]{64}$/);
export const fingerprint: fc.Arbitrary<Json> = fc.oneof(
  fc.constantFrom(ref("witnessFp"), ref("witnessFpUpper"), ref("selfFp")),
  hex64.map(lit),
  fc.constantFrom("", "ab".repeat(31), "zz".repeat(32)).map(lit),
);

export const target: fc.Arbitrary<Json> = fc.oneof(
  { weight: 5, arbitrary: fc.constantFrom(ref("witnessFp"), ref("witnessFpUpper"), ref("witnessAlias")) },
  { weight: 1, arbitrary: json(ref("selfFp")) },
  { weight: 1, arbitrary: hex64.map(lit) },
  { weight: 1, arbitrary: fc.stringMatching(/^[A-Za-z0-9_-]{1,32}$/).map(lit) },
  { weight: 1, arbitrary: protoKey.map(lit) },
);

const flatObject = (values: fc.Arbitrary<Json>, maxKeys: number): fc.Arbitrary<Json> =>
  fc.array(fc.tuple(fc.oneof(fc.stringMatching(/^[a-z_]{1,8}$/), protoKey), values), { maxLength: maxKeys }).map(obj);

const scalar: fc.Arbitrary<Json> = fc.oneof(fc.string({ maxLength: 12 }).map(lit), fc.integer({ min: -5, max: 100 }).map(lit), fc.boolean().map(lit));

export const meta: fc.Arbitrary<Json> = fc.oneof(
  { weight: 4, arbitrary: flatObject(fc.oneof(scalar, smallJson), 5) },
  { weight: 1, arbitrary: fc.integer({ min: 4_000, max: 4_200 }).map((n) => obj([["big", lit("m".repeat(n))]])) },
  { weight: 1, arbitrary: anyValue },
);

export const criteria: fc.Arbitrary<Json> = fc.oneof(
  { weight: 4, arbitrary: flatObject(scalar, 4) },
  { weight: 1, arbitrary: fc.integer({ min: 30, max: 40 }).map((n) => obj(Array.from({ length: n }, (_, i): Entry => [`k${i}`, lit(i)]))) },
  { weight: 1, arbitrary: anyValue },
);

export const signalPayload: fc.Arbitrary<Json> = fc.oneof(
  fc
    .tuple(fc.constantFrom("offer", "answer", "candidate", "bogus"), fc.string({ maxLength: 40 }))
    .map(([kind, sdp]) => obj([["signal_type", lit(kind)], ["sdp", lit(sdp)]])),
  json(obj([["signal_type", lit("candidate")], ["candidate", obj([["candidate", lit("candidate:1 1 UDP 2122252543 192.168.1.1 12345 typ host")], ["sdpMid", lit("0")], ["sdpMLineIndex", lit(0)]])]])),
  flatObject(smallJson, 4),
  anyValue,
);

export const exclude: fc.Arbitrary<Json> = fc.oneof(
  fc.array(fc.oneof(hex64.map(lit), fc.constantFrom(ref("witnessFp"), ref("witnessFpUpper"), ref("selfFp"))), { maxLength: 3 }).map(arr),
  anyValue,
);
