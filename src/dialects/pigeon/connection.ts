import type { Socket } from "node:net";
import type { WebSocket } from "ws";
import type { Body } from "../../protocol/envelope.ts";
import { CloseCode } from "../../protocol/errors.ts";
import type { ErrorPayload, MemberEntry } from "../../protocol/server-messages.ts";
import type { WsConnectionContext } from "../../transport/ws-connection.ts";
import { DialectConnection } from "../dialect-connection.ts";
import {
  DEFAULT_NETWORK,
  SIGNAL_TYPES,
  discoveredFrame,
  disconnectedFrame,
  errorFrame,
  networkOf,
  peerIdOf,
  readMeta,
  scopeOf,
  signalFrame,
} from "./wire.ts";

const REPLACED = "another connection with this peerId replaced this one";

/**
 * A PeerPigeon peer's connection: the core's messages in PeerPigeon's words, and what this one
 * client was told. The network it is in is the only scope it ever joins (exclusively), so the
 * network's peer_joined, peer_left and the signals of its members are all it hears.
 */
export class PigeonConnection extends DialectConnection {
  /** The network of the latest announce, from the moment it is sent to the core; undefined before any, and after goodbye. */
  network: string | undefined;
  /** Counts announces and goodbyes: a reply to one that a later one superseded is dropped. */
  generation = 0;
  /**
   * peerId -> isHub of each peer of the current network this client was told about, to say
   * whether a leaver was a hub. Emptied with every change of network; bounded by the network's size.
   */
  readonly known = new Map<string, boolean>();

  constructor(
    id: string,
    socket: WebSocket,
    context: WsConnectionContext,
    tcp: Socket,
    /** This connection's own peerId (case kept). */
    readonly peerId: string,
  ) {
    super(id, "pigeon", socket, context, tcp);
  }

  /** Where the client stands, for `networkName` on what the server itself says. */
  get networkName(): string {
    return this.network ?? DEFAULT_NETWORK;
  }

  /** Sends `error` in PeerPigeon's shape. */
  sendError(message: string): void {
    this.sendFrame(errorFrame(message, this.peerId, this.networkName, Date.now()));
  }

  /** Tells the client about the members of a peer_list (all but itself), remembering each. */
  discover(network: string, members: readonly MemberEntry[]): void {
    const now = Date.now();
    for (const member of members) {
      const peerId = peerIdOf(member.fingerprint);
      if (peerId === undefined || peerId === this.peerId) continue;
      const announced = readMeta(member.meta);
      this.known.set(peerId, announced.isHub);
      this.sendFrame(discoveredFrame(peerId, announced, this.peerId, network, now));
    }
  }

  protected translate(type: string, body: Body): string | undefined {
    switch (type) {
      case "peer_joined":
        return this.joined(body);
      case "peer_left":
        return this.left(body);
      case "error": {
        // Notices the core sends before closing (replaced, register timeout, oversize frame, ...).
        const payload = body.payload as ErrorPayload;
        return errorFrame(payload.close_code === CloseCode.Replaced ? REPLACED : payload.message, this.peerId, this.networkName, Date.now());
      }
      default:
        // registered, peer_list, pong, ...: replies this dialect takes through its own callbacks.
        return undefined;
    }
  }

  /** `offer`, `answer`, `ice-candidate` from a peer of this network, `data` as its sender sent it. */
  protected signalFrame(t: string, from: string, valueText: string, ts: number): string | undefined {
    const peerId = peerIdOf(from);
    if (peerId === undefined || !SIGNAL_TYPES.has(t)) return undefined;
    return signalFrame(t, valueText, peerId, this.peerId, this.networkName, ts);
  }

  private joined(body: Body): string | undefined {
    const network = this.current(body.namespace);
    const member = body.payload as MemberEntry | undefined;
    const peerId = member === undefined ? undefined : peerIdOf(member.fingerprint);
    if (network === undefined || member === undefined || peerId === undefined || peerId === this.peerId) return undefined;
    const announced = readMeta(member.meta);
    this.known.set(peerId, announced.isHub);
    return discoveredFrame(peerId, announced, this.peerId, network, Date.now());
  }

  private left(body: Body): string | undefined {
    const network = this.current(body.namespace);
    const peerId = peerIdOf(body.from ?? "");
    if (network === undefined || peerId === undefined || peerId === this.peerId) return undefined;
    const isHub = this.known.get(peerId) ?? false;
    this.known.delete(peerId);
    return disconnectedFrame(peerId, isHub, this.peerId, network, Date.now());
  }

  /** The network a notice is about, if it is the one this client is in: news of a network it left is stale. */
  private current(scope: string | undefined): string | undefined {
    if (scope === undefined || this.network === undefined || scope !== scopeOf(this.network)) return undefined;
    return networkOf(scope);
  }
}
