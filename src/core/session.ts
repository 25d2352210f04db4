import type { Meta } from "../protocol/requests.ts";
import type { Connection } from "./connection.ts";

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

  constructor(readonly connection: Connection) {}

  /** Rate-limit key: the fingerprint once known (it is unique cluster-wide), else the connection. */
  get limitKey(): string {
    return this.fingerprint ?? this.connection.id;
  }
}
