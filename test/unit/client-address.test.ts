import { describe, expect, it } from "vitest";
import { clientAddressResolver, forwardedForOfHead, trustedProxiesProblem } from "../../src/trust/client-address.ts";

describe("client address", () => {
  it("without trusted proxies is the socket's, whatever X-Forwarded-For says", () => {
    const resolve = clientAddressResolver([]);
    expect(resolve("10.0.0.5", "203.0.113.9")).toBe("10.0.0.5");
    expect(resolve(undefined, "203.0.113.9")).toBeUndefined();
  });

  it("from a trusted proxy is the rightmost X-Forwarded-For entry that is not itself a trusted proxy", () => {
    const resolve = clientAddressResolver(["10.0.0.0/8"]);
    // The client wrote "1.1.1.1" itself; its proxy appended the address it saw.
    expect(resolve("10.0.0.5", "1.1.1.1, 203.0.113.9")).toBe("203.0.113.9");
    // Two trusted proxies in a row: the second's hop is skipped too.
    expect(resolve("10.0.0.5", "1.1.1.1, 203.0.113.9, 10.0.0.7")).toBe("203.0.113.9");
    // Every hop trusted: the leftmost one is the client.
    expect(resolve("10.0.0.5", "10.1.1.1, 10.0.0.7")).toBe("10.1.1.1");
    expect(resolve("10.0.0.5", undefined)).toBe("10.0.0.5");
    expect(resolve("10.0.0.5", "")).toBe("10.0.0.5");
  });

  it("from an untrusted peer ignores the header: a client cannot choose its address", () => {
    const resolve = clientAddressResolver(["10.0.0.0/8"]);
    expect(resolve("203.0.113.9", "10.0.0.1")).toBe("203.0.113.9");
    expect(resolve("203.0.113.9", "1.2.3.4")).toBe("203.0.113.9");
  });

  it("reads IPv4-mapped socket addresses as IPv4, and accepts named ranges and IPv6", () => {
    expect(clientAddressResolver(["127.0.0.1"])("::ffff:127.0.0.1", "198.51.100.4")).toBe("198.51.100.4");
    expect(clientAddressResolver(["loopback"])("::1", "2001:db8::5")).toBe("2001:db8::5");
    expect(clientAddressResolver(["fd00::/8"])("fd00::1", "198.51.100.4")).toBe("198.51.100.4");
  });

  it("stops at the trusted proxy that forwarded something that is no address", () => {
    const resolve = clientAddressResolver(["10.0.0.0/8"]);
    expect(resolve("10.0.0.5", "1.2.3.4, not-an-address")).toBe("10.0.0.5");
    expect(resolve("10.0.0.5", "203.0.113.9:4711")).toBe("10.0.0.5");
  });

  it("checks a trusted_proxies list with the resolver's own parser", () => {
    expect(trustedProxiesProblem([])).toBeUndefined();
    expect(trustedProxiesProblem(["10.0.0.0/8", "fd00::/8", "192.168.1.7", "uniquelocal", "loopback"])).toBeUndefined();
    expect(trustedProxiesProblem(["10.0.0.0/33"])).toBeDefined();
    expect(trustedProxiesProblem(["nginx"])).toBeDefined();
  });

  it("reads X-Forwarded-For from a raw request head, several lines joined", () => {
    const head = "GET /ws HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 1.1.1.1\r\nUpgrade: websocket\r\nx-forwarded-for:  2.2.2.2 , 3.3.3.3";
    expect(forwardedForOfHead(head)).toBe("1.1.1.1, 2.2.2.2 , 3.3.3.3");
    expect(forwardedForOfHead("GET / HTTP/1.1\r\nHost: x")).toBeUndefined();
  });
});
