import type { Body } from "../protocol/envelope.ts";
import type { CloseCode, ErrorCode } from "../protocol/errors.ts";

/** A peer as delivery addresses it: its fingerprint and the process (node) holding its connection. */
export interface PeerAddress {
  readonly fingerprint: string;
  readonly nodeId: string;
}

/** Marks a peer_joined notice with its joiner's place in join order (see join-fence.ts). */
export interface JoinFence {
  /** Namespace or room name the notice is about. */
  scope: string;
  /** The joiner's seq in that scope (JoinResult.seq). */
  seq: number;
}

/**
 * Getting a message to peers anywhere in the deployment: on this process, on another worker of the
 * machine, on another node.
 *
 * Order: messages with the same origin (the `from` of their body: the peer whose action they are)
 * reach each receiver in the order they were handed over here, whatever their types and paths, in
 * one process, across the workers of a machine and across nodes sharing one Redis. A call that
 * returns a promise has not delivered to this process's own connections yet (the adapter does that
 * after publishing); its caller awaits it before handing over the next message of that origin.
 */
export interface Delivery {
  /**
   * Emits to every connection in any of `rooms`, except those in any of `except`; serialized once.
   * With a fence, connections whose own join of `fence.scope` came later are skipped (JoinGate.route).
   * The message is ordered with the others of `origin` (default: the body's `from`).
   */
  emit(rooms: string | readonly string[], type: string, body: Body, except?: readonly string[], fence?: JoinFence, origin?: string): Promise<void> | undefined;
  /**
   * Delivers to one peer on another process. `bodyJson`, when given, is `body` already serialized
   * (forwarded as received): it is written as is. `receivedAt`, when above 0, is when this process
   * received the message (a Metrics.now() stamp): it travels beside the message, never in what the
   * client reads, and the target's process observes the delivery time with it.
   */
  toPeer(target: PeerAddress, type: string, body: Body, bodyJson?: string, receivedAt?: number): void;
  /** Like emit, but only to connections of this process (for events every process raises itself). */
  emitLocal(room: string, type: string, body: Body): void;
  /** Makes every connection in room `selector` leave `room`, wherever it is; ordered like emits of `origin`. */
  leave(selector: string, room: string, origin: string): Promise<void> | undefined;
  /** Makes every connection in room `selector` enter `room`, wherever it is; ordered like emits of `origin`. */
  join(selector: string, room: string, origin: string): Promise<void> | undefined;
  /** Asks the other processes to close a connection they hold (see Hub.closeLocal). */
  closeElsewhere(connectionId: string, code: ErrorCode, closeCode: CloseCode, message: string): void;
}

/** Adapter room names. Namespaces and rooms share one name space, so they share a prefix. */
export const SCOPE_PREFIX = "ns:";
export const scopeRoom = (name: string): string => `${SCOPE_PREFIX}${name}`;
export const peerRoom = (fingerprint: string): string => `fp:${fingerprint}`;
