import type { Delivery } from "../delivery/delivery.ts";
import type { MessageBudgets } from "../limits/message-budgets.ts";
import type { RegistrationLimits } from "../backends/registration-limiter.ts";
import type { ConnectionLog } from "../observability/connection-log.ts";
import type { Logger } from "../observability/logger.ts";
import type { Metrics } from "../observability/metrics.ts";
import type { ServerMessage } from "../protocol/server-messages.ts";
import type { StateStore } from "../backends/state-store.ts";
import type { JoinGate } from "./join-gate.ts";
import type { Session } from "./session.ts";
import type { Sessions } from "./sessions.ts";

/** Time as the core reads it; unit tests inject a fake one (test/helpers/fake-clock.ts). */
export interface Clock {
  /** Wall-clock milliseconds since the epoch: the `ts` that clients read. */
  now(): number;
  /** Runs `callback` once, `ms` from now; the result cancels it. Never keeps the process alive by itself. */
  setTimer(callback: () => void, ms: number): () => void;
}

/** The process's own clock; its timers are unref'd. */
export const systemClock: Clock = {
  now: Date.now,
  setTimer(callback, ms) {
    const timer = setTimeout(callback, ms);
    timer.unref();
    return () => clearTimeout(timer);
  },
};

/**
 * What the handler modules work with. The hub builds it once; each module declares the part it
 * needs (a Pick of this) and never sees the hub.
 */
export interface CoreContext {
  /** The state shared by the whole deployment (peers, memberships, rooms, match queues). */
  readonly store: StateStore;
  /** Gets messages to peers wherever they are connected. */
  readonly delivery: Delivery;
  /** This process's sessions by connection id, fingerprint and alias. */
  readonly sessions: Sessions;
  /** Makes joins exact for the joiner and its peers (see JoinGate). */
  readonly joins: JoinGate;
  /** Every connection's message budget and how it outlives the connection. */
  readonly budgets: MessageBudgets;
  /** Registrations per client address whatever the key (registration_rate_per_ip) and per public key, counted for the whole deployment. */
  readonly registrationLimits: RegistrationLimits;
  /** What each connection's access token allows (core/access.ts); allows everything when access tokens are off. */
  readonly access: AccessRules;
  readonly logger: Logger;
  /** The lines about connections (opened, registered, refused, rate limited, closed). */
  readonly log: ConnectionLog;
  readonly clock: Clock;
  /** This process's id in the deployment; recorded with each peer it registers. */
  readonly nodeId: string;
  /** What is counted and timed for the metrics (noMetrics when they are off). */
  readonly metrics: Metrics;
}

/** The checks of a session's access token claims (core/access.ts): each throws a 403 ProtocolError when the token does not allow it. */
export interface AccessRules {
  /** The connection may register `fingerprint` (`sub`). */
  checkSubject(session: Session, fingerprint: string): void;
  /** The connection may join, and match in, namespace `name` (`namespaces`). */
  checkNamespace(session: Session, name: string): void;
}

/** A handler's direct reply; undefined when the request has none (a Socket.IO acknowledgement then gets `ok`). */
export type Reply = ServerMessage | undefined;

/**
 * Handles one validated request. Only `register` runs for an unregistered session, and only for
 * one. A handler that needs no I/O returns synchronously: no promise on the hot path.
 * `receivedAt` is when the request reached the core, a Metrics.now() stamp (0 with metrics off).
 */
export type Handler<R> = (session: Session, request: R, receivedAt: number) => Reply | Promise<Reply>;
