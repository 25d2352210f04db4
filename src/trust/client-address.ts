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
 * @returns the client's address in its normal form (normalizeAddress), undefined when the socket
 *   shows none (or nothing that is an IP address)
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

/** The resolver of a `trusted_proxies` list; with none trusted, the socket's address (no header is read). */
export function clientAddressResolver(trustedProxies: readonly string[]): ClientAddress {
  if (trustedProxies.length === 0) return (socketAddress) => normal(socketAddress);
  const trust = proxyAddr.compile([...trustedProxies]);
  return (socketAddress, forwardedFor) => normal(forwardedClient(trust, socketAddress, forwardedFor));
}

const normal = (address: string | undefined): string | undefined => (address === undefined ? undefined : normalizeAddress(address));

/** The rightmost hop of `X-Forwarded-For` that `trust` does not vouch for, as proxy-addr writes it; the socket's address when its peer is no trusted proxy. */
function forwardedClient(trust: (address: string, hop: number) => boolean, socketAddress: string | undefined, forwardedFor: string | undefined): string | undefined {
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
}

const isAddress = (text: string): boolean => isIP(text) !== 0;

/** An IPv4 address as IPv6 shows it once normalized (`::ffff:7f00:2`): the two last groups are the IPv4 address. */
const MAPPED_IPV4 = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/;

/**
 * The normal form of a client address, so that a ban and a connection's address compare as text:
 * IPv4 as a dotted quad (also when a dual-stack socket shows it IPv4-mapped, `::ffff:127.0.0.2`),
 * IPv6 compressed and in lowercase, without a zone (`%eth0`). Undefined when it is no IP address.
 */
export function normalizeAddress(address: string): string | undefined {
  const bare = address.includes("%") ? address.slice(0, address.indexOf("%")) : address;
  const family = isIP(bare);
  if (family === 4) return bare;
  // A dual-stack listener shows every IPv4 client so: the usual case, without a URL parse.
  if (family === 6 && /^::ffff:\d/i.test(bare) && isIP(bare.slice(7)) === 4) return bare.slice(7);
  if (family !== 6) return undefined;
  // The WHATWG URL parser writes an IPv6 host in its one canonical form (RFC 5952).
  const canonical = new URL(`http://[${bare}]/`).hostname.slice(1, -1);
  const mapped = MAPPED_IPV4.exec(canonical);
  if (mapped === null) return canonical;
  const high = Number.parseInt(mapped[1] as string, 16);
  const low = Number.parseInt(mapped[2] as string, 16);
  return `${high >> 8}.${high & 0xff}.${low >> 8}.${low & 0xff}`;
}

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
