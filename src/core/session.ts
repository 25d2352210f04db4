import type { Bucket } from "../limits/token-bucket.ts";
import type { AccessClaims } from "../trust/access-tokens.ts";
import type { DecodedRequest } from "../protocol/decoder.ts";
import type { Meta } from "../protocol/requests.ts";
import type { HeldDelivery } from "../delivery/join-fence.ts";
import type { Connection } from "./connection.ts";

/** Where a direct reply goes: a Socket.IO acknowledgement callback, or the connection itself. */
export type Ack = (envelope: Record<string, unknown>) => void;

/** A request waiting for its turn, with where its reply goes. */
export interface QueuedRequest {
  request: DecodedRequest;
  ack: Ack | undefined;
  /** When it reached the core: a Metrics.now() stamp, a small integer (0 with metrics off). */
  receivedAt: number;
}

/** What a node keeps about one namespace or room its peer is in. */
export interface Membership {
  /** The app_type it joined a namespace with; undefined for a room. */
  appType: string | undefined;
  /** A room's max_size (to create it again after a state loss); undefined for a namespace. */
  roomSize: number | undefined;
  /**
   * The seq of this peer's own join there (JoinResult.seq): peer_joined notices about earlier
   * joiners are skipped, its peer_list had them. Undefined (a room it created, or state restored
   * after a loss): every notice is delivered. Written by JoinGate only.
   */
  joinSeq: number | undefined;
}

/** One connection's state in the core: identity once registered, and its ordered request queue. */
export class Session {
  fingerprint: string | undefined;
  alias: string | undefined;
  /** Its register proved possession of the key (kept to register it the same way after a state loss). */
  verified = false;
  /**
   * The resume token its registration was given (core/resumption.ts): set for a native peer while
   * resume is on, and then its peer is suspended, not departed, when the connection drops.
   */
  resumeToken: string | undefined;
  /**
   * The nonce issued by `challenge` (core/challenges.ts) and when it expires (the clock's ms):
   * one at a time, taken by the next signed register; undefined when none is waiting.
   */
  challenge: { readonly nonce: string; readonly expiresAt: number } | undefined;
  /**
   * What the connection's access token grants (access tokens on; see core/access.ts), and what
   * cancels its close at the token's expiry; undefined when access tokens are off.
   */
  access: { readonly claims: AccessClaims; cancelExpiry: (() => void) | undefined } | undefined;
  /** When the hub admitted the connection (the clock's ms): its `durationMs` when it closes. */
  openedAt = 0;
  closed = false;
  /** The cleanup started by Hub.close, shared by every caller. */
  closing: Promise<void> | undefined;
  /** Requests are handled one at a time, in arrival order, even when a handler awaits the store. */
  readonly queue: QueuedRequest[] = [];
  /**
   * The Metrics.now() stamp of the current request's hand-off to its target on this process (a
   * signal or relay served locally), which is also when its handling ended; 0 otherwise. Set by
   * the handler, read and reset by the hub: the clock is read once for both.
   */
  handedOffAt = 0;
  draining = false;
  /** The request being handled has a Socket.IO acknowledgement callback: its reply or error must go there, in its turn. */
  acknowledged = false;
  /** Cancels the close for not registering within pong_wait; undefined once registered or closed. */
  cancelRegisterTimeout: (() => void) | undefined;
  /**
   * What this node knows of its own peer, enough to register it again if the shared state is
   * lost (Redis restarted empty): its meta, and each namespace and room it is in (the keys are
   * also whom to tell if its own cleanup is lost). One map for all of it: a map per kind of fact
   * cost a few hundred bytes more per connection.
   */
  meta: Meta = {};
  readonly memberships = new Map<string, Membership>();
  /**
   * Adapter rooms this connection is entering (its join is at the store) -> what arrived through
   * them meanwhile; undefined when none (the usual case: no allocation per connection).
   */
  entering: Map<string, HeldDelivery[]> | undefined;
  /** Runs once the reply to the current request is sent (held deliveries must follow the peer_list). */
  afterReply: (() => void) | undefined;

  /**
   * This connection's message budget (see MessageBudgets): its own until it registers, then its
   * key's, restored from what the key's previous connection left. Undefined once handed over to a
   * newer connection with the same key on this process, or saved on close.
   */
  budget: Bucket | undefined;

  /** Targeted messages sent straight to another node whose outcome (a fallback to the store, a 404) is not known yet. */
  private unsettledSends = 0;
  private onSendsSettled: (() => void) | undefined;

  constructor(readonly connection: Connection) {}

  /** A targeted message left for another node; settleSend follows once its outcome is known. */
  beginSend(): void {
    this.unsettledSends++;
  }

  settleSend(): void {
    if (--this.unsettledSends > 0) return;
    const settled = this.onSendsSettled;
    this.onSendsSettled = undefined;
    settled?.();
  }

  /**
   * Resolves once every targeted message sent so far has its outcome; undefined when none waits.
   * Requests other than signal and relay wait for it, so their replies never overtake an earlier
   * signal's 404, nor their broadcasts its delivery.
   */
  sendsSettled(): Promise<void> | undefined {
    if (this.unsettledSends === 0) return undefined;
    return new Promise((resolve) => {
      const before = this.onSendsSettled;
      this.onSendsSettled = () => {
        before?.();
        resolve();
      };
    });
  }
}

/** The fingerprint of a registered session: every handler but register's runs only once the hub checked it. */
export const peerOf = (session: Session): string => session.fingerprint as string;
