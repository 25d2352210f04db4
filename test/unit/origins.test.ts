import { describe, expect, it } from "vitest";
import { originPolicy } from "../../src/trust/origins.ts";

describe("origin policy", () => {
  it("* allows every origin", () => {
    const policy = originPolicy(["*"]);
    expect(policy.allowsAll).toBe(true);
    expect(policy.allowed("https://anything.example")).toBe(true);
    expect(policy.allowed("null")).toBe(true);
  });

  it("a list allows its origins, compared without case and trailing slash, and nothing else", () => {
    const policy = originPolicy(["https://app.example.com", "http://localhost:3000/"]);
    expect(policy.allowsAll).toBe(false);
    expect(policy.allowed("https://app.example.com")).toBe(true);
    expect(policy.allowed("HTTPS://APP.example.com")).toBe(true);
    expect(policy.allowed("http://localhost:3000")).toBe(true);
    expect(policy.allowed("http://app.example.com")).toBe(false);
    expect(policy.allowed("https://app.example.com.evil.example")).toBe(false);
    expect(policy.allowed("https://evil.example")).toBe(false);
    expect(policy.allowed("null")).toBe(false);
    expect(policy.allowed("")).toBe(false);
  });

  it("a request without Origin always passes, even when the list is empty", () => {
    expect(originPolicy(["https://app.example.com"]).allowed(undefined)).toBe(true);
    expect(originPolicy([]).allowed(undefined)).toBe(true);
    expect(originPolicy([]).allowed("https://app.example.com")).toBe(false);
  });
});
