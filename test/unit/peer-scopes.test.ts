import { describe, expect, it } from "vitest";
import { appTypeIn, NO_SCOPES, scopeCount, scopeEntries, scopeNames, scopesOf, withoutScope, withScope } from "../../src/backends/memory/peer-scopes.ts";

describe("a peer's scope list", () => {
  it("adds scopes in join order, each with its app_type, without changing the list it was given", () => {
    const one = withScope(NO_SCOPES, "lobby", "chess");
    const two = withScope(one, "room-1", "");
    expect(scopeEntries(one)).toEqual([["lobby", "chess"]]);
    expect(scopeEntries(two)).toEqual([
      ["lobby", "chess"],
      ["room-1", ""],
    ]);
    expect(scopeNames(two)).toEqual(["lobby", "room-1"]);
    expect(scopeCount(two)).toBe(2);
    expect(NO_SCOPES).toEqual([]);
  });

  it("tells the app_type of a scope the peer is in, and undefined for one it is not in", () => {
    const scopes = scopesOf([
      ["lobby", "chess"],
      ["room-1", ""],
    ]);
    expect(appTypeIn(scopes, "lobby")).toBe("chess");
    expect(appTypeIn(scopes, "room-1")).toBe("");
    expect(appTypeIn(scopes, "chess")).toBeUndefined(); // an app_type is not a scope name
    expect(appTypeIn(NO_SCOPES, "lobby")).toBeUndefined();
  });

  it("removes one scope and keeps the others in order; the last one gone leaves the shared empty list", () => {
    const scopes = scopesOf([
      ["a", "x"],
      ["b", "y"],
      ["c", "z"],
    ]);
    expect(scopeEntries(withoutScope(scopes, "b"))).toEqual([
      ["a", "x"],
      ["c", "z"],
    ]);
    expect(withoutScope(scopes, "missing")).toEqual(scopes);
    expect(withoutScope(withScope(NO_SCOPES, "a", "x"), "a")).toBe(NO_SCOPES);
    expect(scopesOf([])).toBe(NO_SCOPES);
  });
});
