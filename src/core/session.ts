import type { Meta } from "../protocol/requests.ts";
import type { Connection, JoinFence } from "./connection.ts";

/** What a client sent: the envelope's fields as received, before validation. */
export interface Incoming {
  type: string;
  to?: unknown;
  namespace?: unknown;
  payload?: unknown;
  /** The payload's JSON text exactly as received (raw /ws signal and relay), to forward without serializing again. */
  payloadJson?: string;
}

/** Where a direct reply goes: a Socket.IO acknowledgement callback, or the connection itself. */
export type Ack = (envelope: Record<string, unknown>) => void;

export interface QueuedRequest {
  message: Incoming;
  ack: Ack | undefined;
}

/** A message that reached a connection through a room it is still entering; see Hub.route. */
export interface HeldDelivery {
  fence: JoinFence | undefined;
  deliver: () => void;
}

/** One connection's state in the core: identity once registered, and its ordered request queue. */
export class Session {
  fingerprint: string | undefined;
  alias: string | undefined;
  closed = false;
  /** The cleanup started by Hub.close, shared by every caller. */
  closing: Promise<void> | undefined;
  /** Requests are handled one at a time, in arrival order, even when a handler awaits the store. */
  readonly queue: QueuedRequest[] = [];
  draining = false;
  registerTimer: NodeJS.Timeout | undefined;
  /**
   * What this node knows of its own peer, enough to register it again if the shared state is
   * lost (Redis restarted empty): its meta, the app_type of each namespace, the size of each room
   * it created or joined here (the keys are also whom to tell if its own cleanup is lost).
   */
  meta: Meta = {};
  readonly appTypes = new Map<string, string>();
  readonly roomSizes = new Map<string, number>();
  /**
   * Scope name -> the seq of this peer's own join there (JoinResult.seq). peer_joined notices
   * about earlier joiners are skipped: the peer_list this peer got already had them. No entry
   * (a room it created, or state restored after a loss) means every notice is delivered.
   */
  readonly joinSeqs = new Map<string, number>();
  /**
   * Adapter rooms this connection is entering (its join is at the store) -> what arrived through
   * them meanwhile; undefined when none (the usual case: no allocation per connection).
   */
  entering: Map<string, HeldDelivery[]> | undefined;
  /** Runs once the reply to the current request is sent (held deliveries must follow the peer_list). */
  afterReply: (() => void) | undefined;

  constructor(readonly connection: Connection) {}

  /** Rate-limit key: the fingerprint once known (it is unique cluster-wide), else the connection. */
  get limitKey(): string {
    return this.fingerprint ?? this.connection.id;
  }
}
