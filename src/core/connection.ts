import type { Body } from "../protocol/envelope.ts";
import type { CloseCode, ErrorCode } from "../protocol/errors.ts";
import type { PeerRecord } from "../state/store.ts";

/**
 * One client connection, whatever its transport. Its adapter rooms are the membership
 * mirror used for delivery: the Socket.IO adapter (memory, cluster or Redis) carries every
 * emit addressed to them, wherever it starts.
 */
export interface Connection {
  /** The id the adapter knows this connection by (a Socket.IO socket id, or one minted for /ws). */
  readonly id: string;
  readonly transport: "ws" | "socket.io";
  /** Adapter rooms this connection is in; includes its own id. */
  readonly rooms: ReadonlySet<string>;
  /** Pushes one message. Overflowing the send buffer closes the connection as a slow consumer. */
  send(type: string, body: Body): void;
  /** Pushes one message whose body is already serialized (from another worker). */
  sendEncoded(type: string, bodyJson: string): void;
  join(room: string): void;
  leave(room: string): void;
  /** Leaves every room at once, then closes; idempotent. */
  close(code: CloseCode, reason: string): void;
}

/** Delivery through the adapter: reaches connections on this and (with cluster/Redis) other processes. */
/** Marks a peer_joined notice with its joiner's place in join order (see delivery/join-fence.ts). */
export interface JoinFence {
  /** Namespace or room name the notice is about. */
  scope: string;
  /** The joiner's seq in that scope (JoinResult.seq). */
  seq: number;
}

export interface Delivery {
  /**
   * Emits to every connection in any of `rooms`, except those in any of `except`; serialized once.
   * With a fence, connections whose own join of `fence.scope` came later are skipped (JoinGate.route).
   */
  emit(rooms: string | readonly string[], type: string, body: Body, except?: readonly string[], fence?: JoinFence): void;
  /** Delivers to one peer wherever it is connected: directly to its worker when that is known, else through the adapter. */
  toPeer(target: PeerRecord, type: string, body: Body, bodyJson?: string): void;
  /** Like emit, but only to connections of this process (for events every process raises itself). */
  emitLocal(room: string, type: string, body: Body): void;
  /** Makes every connection in room `selector` leave `room`, wherever it is. */
  leave(selector: string, room: string): void;
  /** Asks the other processes to close a connection they hold (see Hub.closeLocal). */
  closeElsewhere(connectionId: string, code: ErrorCode, closeCode: CloseCode, message: string): void;
}

/** Adapter room names. Namespaces and rooms share one name space, so they share a prefix. */
export const scopeRoom = (name: string): string => `ns:${name}`;
export const peerRoom = (fingerprint: string): string => `fp:${fingerprint}`;
export const SCOPE_PREFIX = "ns:";
