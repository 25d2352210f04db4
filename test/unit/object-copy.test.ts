import { describe, expect, it } from "vitest";
import { withFields } from "../../src/internals/object-copy.ts";

describe("withFields", () => {
  it("is a new object with the object's properties, the fields added or replacing them, the object untouched", () => {
    const object = { a: 1, b: "two", nested: { c: 3 } };
    const copy = withFields(object, { b: 2, d: true });
    expect(copy).toEqual({ a: 1, b: 2, nested: { c: 3 }, d: true });
    expect(object).toEqual({ a: 1, b: "two", nested: { c: 3 } });
    expect(copy.nested).toBe(object.nested);
  });
});
