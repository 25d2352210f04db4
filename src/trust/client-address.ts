import { isIP } from "node:net";
import proxyAddr from "proxy-addr";

/**
 * The client's address: the TCP peer's, unless that peer is a trusted proxy (`trusted_proxies`),
 * whose `X-Forwarded-For` is then believed as far as it goes through trusted proxies. Proxies
 * append the address they received the request from, so the header's rightmost entries are the
 * ones trusted proxies wrote; walking it from the right and stopping at the first entry that is
 * not itself a trusted proxy gives the first untrusted hop, which a client cannot choose by
 * writing the header itself (whatever it writes lies to the left of what its first proxy appends).
 *
 * @param socketAddress the TCP peer's address, as the socket shows it
 * @param forwardedFor the request's `X-Forwarded-For` (several header lines joined with commas)
 * @returns the client's address, undefined only when the socket shows none
 */
export type ClientAddress = (socketAddress: string | undefined, forwardedFor: string | undefined) => string | undefined;

/** The names proxy-addr knows for ranges, accepted in `trusted_proxies` beside addresses and CIDR ranges. */
export const NAMED_RANGES: readonly string[] = ["loopback", "linklocal", "uniquelocal"];

/**
 * Checks a `trusted_proxies` list: undefined when every entry is an address, a CIDR range
 * (`10.0.0.0/8`, `fd00::/8`) or a named range, else the problem. The same parser as the resolver's.
 */
export function trustedProxiesProblem(entries: readonly string[]): string | undefined {
  try {
    if (entries.length > 0) proxyAddr.compile([...entries]);
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

/** The resolver of a `trusted_proxies` list; with none trusted, the socket's address as it is (no header is read). */
export function clientAddressResolver(trustedProxies: readonly string[]): ClientAddress {
  if (trustedProxies.length === 0) return (socketAddress) => socketAddress;
  const trust = proxyAddr.compile([...trustedProxies]);
  return (socketAddress, forwardedFor) => {
    if (socketAddress === undefined) return undefined;
    if (forwardedFor === undefined || forwardedFor === "" || !trust(socketAddress, 0)) return socketAddress;
    // proxy-addr reads the socket's address and the header from a request; these are all it reads.
    const hops = proxyAddr.all({ socket: { remoteAddress: socketAddress }, headers: { "x-forwarded-for": forwardedFor } } as unknown as Parameters<typeof proxyAddr.all>[0], trust);
    // A trusted proxy that forwarded something that is no address: the last hop it vouches for is itself.
    for (let index = hops.length - 1; index >= 0; index--) {
      const hop = hops[index] as string;
      if (isAddress(hop)) return hop;
    }
    return socketAddress;
  };
}

const isAddress = (text: string): boolean => isIP(text) !== 0;

const FORWARDED_FOR = /\r\nx-forwarded-for:[ \t]*([^\r\n]*)/gi;

/**
 * The `X-Forwarded-For` of a raw request head (latin1, lines ending in CRLF), several lines joined
 * with commas as Node joins them; undefined when there is none. For the cluster's router, which
 * reads requests before any HTTP parser does.
 */
export function forwardedForOfHead(head: string): string | undefined {
  let joined: string | undefined;
  for (const match of head.matchAll(FORWARDED_FOR)) {
    const value = (match[1] ?? "").trim();
    joined = joined === undefined ? value : `${joined}, ${value}`;
  }
  return joined;
}
