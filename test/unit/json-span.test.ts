import { describe, expect, it } from "vitest";
import { memberText } from "../../src/protocol/json-span.ts";

/** The span must be exactly the JSON of what JSON.parse sees for the key. */
function agrees(json: string, key: string): void {
  const span = memberText(json, key);
  const parsed = (JSON.parse(json) as Record<string, unknown>)[key];
  if (span === undefined) return;
  expect(JSON.parse(span)).toEqual(parsed);
}

describe("memberText", () => {
  it("returns the value text of a top-level member as written", () => {
    expect(memberText('{"type":"signal","payload":{"sdp":"v=0\\r\\n","n":[1,{"a":"}"}]},"to":"x"}', "payload")).toBe('{"sdp":"v=0\\r\\n","n":[1,{"a":"}"}]}');
    expect(memberText('{ "payload" : { "a" : 1 } , "to" : "b" }', "payload")).toBe('{ "a" : 1 }');
    expect(memberText('{"payload":"quote \\" and backslash \\\\","x":1}', "payload")).toBe('"quote \\" and backslash \\\\"');
    expect(memberText('{"a":1,"payload":12.5e3}', "payload")).toBe("12.5e3");
    expect(memberText('{"payload":true}', "payload")).toBe("true");
  });

  it("ignores nested members with the same name and takes the last duplicate, like JSON.parse", () => {
    expect(memberText('{"to":{"payload":1},"payload":{"b":2}}', "payload")).toBe('{"b":2}');
    expect(memberText('{"payload":{"first":1},"payload":{"second":2}}', "payload")).toBe('{"second":2}');
  });

  it("gives up on escaped keys and absent members", () => {
    expect(memberText('{"\\u0070ayload":{"a":1}}', "payload")).toBeUndefined();
    expect(memberText('{"payload":{"a":1},"\\u0070ayload":{"evil":1}}', "payload")).toBeUndefined();
    expect(memberText('{"to":"x"}', "payload")).toBeUndefined();
    expect(memberText("[1,2]", "payload")).toBeUndefined();
  });

  it("agrees with JSON.parse on awkward but valid inputs", () => {
    const samples = [
      '{"payload":{"s":"\\\\\\"","t":"\\\\"},"z":[]}',
      '{"payload":[],"x":{}}',
      '{"x":"payload","payload":{"u":"\\u2028 é 😀"}}',
      '{\n\t"payload"\n:\n{"a":[[[]]]}\n}',
      '{"payload":null}',
    ];
    for (const sample of samples) agrees(sample, "payload");
  });
});
