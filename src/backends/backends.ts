import type { ServerOptions } from "socket.io";
import type { BudgetStore } from "./budget-store.ts";
import type { PeerChannels } from "./peer-channels.ts";
import type { RegistrationLimits } from "./registration-limiter.ts";
import type { Departure, StateStore } from "./state-store.ts";

/**
 * What a running server does for its backends: the handlers they are given when the server has
 * started (a backend never sees the server itself).
 */
export interface BackendHandlers {
  /**
   * Tells members about peers removed for a dead process or node. `everywhere`: only this process
   * learned of it, so it tells every process; otherwise every process learned it and tells its own.
   */
  announceDepartures(departures: readonly Departure[], everywhere: boolean): void;
  /** The state backend is reachable again after an outage; `stateLost` when it came back empty. */
  storeRecovered(stateLost: boolean, settleMs: number): Promise<void>;
}

/**
 * Everything a server process shares its world through, connected before the server starts and
 * closed after it has drained: the embedded memory (one process), the cluster primary (the
 * workers of one machine) or Redis (nodes).
 */
export interface Backends {
  readonly store: StateStore;
  /** Where a key's message budget waits between its connections. */
  readonly budgetStore: BudgetStore;
  /** Registrations per client address whatever the key (registration_rate_per_ip) and per public key, for the whole deployment. */
  readonly registrationLimits: RegistrationLimits;
  /** The Socket.IO adapter that reaches the other processes; none when the process is alone. */
  readonly adapter?: NonNullable<ServerOptions["adapter"]>;
  /** A channel per peer between nodes, for targeted messages; none where the adapter or the worker links carry them. */
  readonly peerChannels?: PeerChannels;
  /** Each backend this process depends on, up or down, for /health and /readyz; empty when none can fail. */
  health(): Record<string, "up" | "down">;
  /** Starts what needs the running server (departures of dead peers, outage recovery). */
  attach(handlers: BackendHandlers): Promise<void>;
  /** Leaves cleanly once the server has drained; safe to call twice. */
  close(): Promise<void>;
}
