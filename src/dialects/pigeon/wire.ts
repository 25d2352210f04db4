import { LIMITS, type Meta } from "../../protocol/requests.ts";

/**
 * PeerPigeon's wire (docs/dialects/pigeon.md): its identities and scope names in the core, the
 * checks on what its clients send, and every frame the server sends them. Outbound frames are the
 * originals' envelope, keys in this order: `{type, data, fromPeerId, targetPeerId?, networkName, timestamp}`.
 */

/** A peerId: exactly 40 hex characters, either case; case is kept (`AB…` and `ab…` are two peers). */
const PEER_ID = /^[0-9a-fA-F]{40}$/;

/**
 * A network name: 1-64 letters or digits of any script and `_ - . : ~ @ +`. No spaces, slashes
 * or control characters, so `pigeon/<network>` is one plain scope name in every backend.
 */
const NETWORK = /^[\p{L}\p{N}_.:~@+-]{1,64}$/u;

export const isPeerId = (value: unknown): value is string => typeof value === "string" && PEER_ID.test(value);
export const isNetworkName = (value: unknown): value is string => typeof value === "string" && NETWORK.test(value);

/** The network of an announce without one (or with `""` or null). */
export const DEFAULT_NETWORK = "global";
/** What `fromPeerId` says on everything the server itself says. */
const SYSTEM = "system";

const IDENTITY_PREFIX = "pigeon:";
const SCOPE_PREFIX = "pigeon/";

/** The core's fingerprint of a peerId. */
export const identityOf = (peerId: string): string => IDENTITY_PREFIX + peerId;
/** The peerId of a core fingerprint; undefined for an identity of another kind. */
export const peerIdOf = (identity: string): string | undefined => (identity.startsWith(IDENTITY_PREFIX) ? identity.slice(IDENTITY_PREFIX.length) : undefined);
/** The core scope of a network. */
export const scopeOf = (network: string): string => SCOPE_PREFIX + network;
/** The network of a core scope; undefined for a scope of another kind. */
export const networkOf = (scope: string): string | undefined => (scope.startsWith(SCOPE_PREFIX) ? scope.slice(SCOPE_PREFIX.length) : undefined);

/** The signaling types one peer sends another through the server, `data` untouched. */
export const SIGNAL_TYPES: ReadonlySet<string> = new Set(["offer", "answer", "ice-candidate"]);

/** Members of a network a newcomer is told about: the oldest first. */
export const DISCOVERY_LIMIT = 1_000;

/**
 * What a peer's announce leaves in its core meta: its announce data, whether it is a hub, and
 * when it announced (ms). Nested, so announce data can never collide with the server's own keys,
 * and each announce replaces all three (the core merges meta shallowly).
 */
export interface AnnounceMeta extends Meta {
  data: Meta;
  isHub: boolean;
  at: number;
}

/**
 * The meta of an announce: `data` must be an object that fits the core's 4 KB meta bound with
 * the rest; anything else is announced as `{}`.
 */
export function announceMeta(data: unknown, isHub: boolean, at: number): AnnounceMeta {
  if (typeof data === "object" && data !== null && !Array.isArray(data)) {
    const meta: AnnounceMeta = { data: data as Meta, isHub, at };
    if (Buffer.byteLength(JSON.stringify(meta)) <= LIMITS.maxMetaBytes) return meta;
  }
  return { data: {}, isHub, at };
}

/** A member's meta read back; tolerant of anything (a peer that joined but never announced has none). */
export function readMeta(meta: Meta): AnnounceMeta {
  const data = meta["data"];
  const at = meta["at"];
  return {
    data: typeof data === "object" && data !== null && !Array.isArray(data) ? (data as Meta) : {},
    isHub: meta["isHub"] === true,
    at: typeof at === "number" ? at : 0,
  };
}

/** `connected`, the greeting on every new connection. */
export function connectedFrame(peerId: string, now: number): string {
  return JSON.stringify({ type: "connected", data: { peerId }, fromPeerId: SYSTEM, networkName: DEFAULT_NETWORK, timestamp: now });
}

/** `peer-discovered`: `peerId` and `isHub` win over the announce data. */
export function discoveredFrame(peerId: string, announced: AnnounceMeta, target: string, network: string, now: number): string {
  return JSON.stringify({
    type: "peer-discovered",
    data: { ...announced.data, peerId, isHub: announced.isHub },
    fromPeerId: SYSTEM,
    targetPeerId: target,
    networkName: network,
    timestamp: now,
  });
}

/** `peer-disconnected`, for a peer that left the recipient's network (goodbye, another network, or gone). */
export function disconnectedFrame(peerId: string, isHub: boolean, target: string, network: string, now: number): string {
  return JSON.stringify({ type: "peer-disconnected", data: { peerId, isHub }, fromPeerId: SYSTEM, targetPeerId: target, networkName: network, timestamp: now });
}

/** An `offer`, `answer` or `ice-candidate` as its target receives it. */
export function signalFrame(type: string, dataText: string, from: string, target: string, network: string, timestamp: number): string {
  // Spliced around the data's text as its sender sent it; the type is one of SIGNAL_TYPES and both ids are 40 hex.
  return `{"type":"${type}","data":${dataText},"fromPeerId":"${from}","targetPeerId":"${target}","networkName":${JSON.stringify(network)},"timestamp":${timestamp}}`;
}

/** `pong`, the answer to `ping`. */
export function pongFrame(target: string, network: string, now: number): string {
  return JSON.stringify({ type: "pong", data: { timestamp: now }, fromPeerId: SYSTEM, targetPeerId: target, networkName: network, timestamp: now });
}

/**
 * `error`: the JS original's `{type:"error", error}`, inside the common envelope (the message
 * is in `data.error` too, for clients that read every frame's `data`).
 */
export function errorFrame(message: string, target: string, network: string, now: number): string {
  return JSON.stringify({ type: "error", error: message, data: { error: message }, fromPeerId: SYSTEM, targetPeerId: target, networkName: network, timestamp: now });
}

/** The answer to a type the server does not route: the JS original's words; the type is cut to 64 characters. */
export const unroutedMessage = (type: string): string =>
  `Signaling server does not route '${type.slice(0, 64)}' messages. Use WebRTC data channels for peer-to-peer communication.`;
