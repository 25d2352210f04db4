import type { Body } from "../protocol/envelope.ts";
import type { CloseCode } from "../protocol/errors.ts";

/**
 * One client connection, whatever its transport. Its adapter rooms are the membership
 * mirror used for delivery: the Socket.IO adapter (memory, cluster or Redis) carries every
 * emit addressed to them, wherever it starts.
 */
export interface Connection {
  /** The id the adapter knows this connection by (a Socket.IO socket id, or one minted for /ws). */
  readonly id: string;
  /** `ws`, `socket.io`, or a dialect's name: what `/stats` counts the connection under. */
  readonly transport: string;
  /** The client's address as the TCP connection shows it (a proxy's, behind one); for the log. */
  readonly remoteAddress?: string | undefined;
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

