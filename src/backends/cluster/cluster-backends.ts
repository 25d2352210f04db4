import { createAdapter } from "@socket.io/cluster-adapter";
import type { LimitsResults, StoreReply, WorkerToPrimary } from "../../protocol/cluster-messages.ts";
import type { BackendHandlers, Backends } from "../backends.ts";
import { createMemoryRegistrationLimits, type RegistrationRate } from "../registration-limiter.ts";
import type { Sender } from "./channel.ts";
import { ClusterLimits } from "./cluster-limits.ts";
import { ReplicatedStore } from "./replicated-store.ts";

export interface ClusterBackendsOptions {
  /** How long a state change may wait for the primary before failing with 503. */
  storeCallTimeoutMs: number;
  /**
   * How long a limits call may wait for the primary: then a registration is decided by the worker's
   * own insurance limiter and a budget call gives the connection a fresh budget (see ClusterLimits).
   */
  limitsCallTimeoutMs: number;
  /** Registrations per client address, for the insurance limiter while the primary does not answer. */
  addressRegistrations: RegistrationRate;
  /** Called with the backends before they wait for the primary's snapshot, which comes through their `receive`. */
  onCreated(backends: ClusterBackends): void;
}

/** A worker's backends: the primary keeps the machine's state and limits, the worker a replica. */
export interface ClusterBackends extends Backends {
  /** Takes the primary's answers to the store and the limits (the worker's one dispatcher calls it). */
  receive(message: StoreReply | LimitsResults): void;
  /**
   * The channel to the primary closed: every call waiting for it fails now and every later one at
   * once (state changes with 503, registrations go to the worker's insurance limiter, budget
   * hand-overs fail), so nothing in the worker's shutdown waits on a primary that cannot answer.
   */
  primaryGone(): void;
  /**
   * The primary is stopping the whole machine, its state with it: state changes apply to this
   * worker's replica only and message budgets are not kept, so a worker's stop waits on nothing
   * the primary would have to do for each of its peers.
   */
  machineStopping(): void;
}

/**
 * Connects a worker to the machine's state through the primary (StoreHost, LimitsHost): a replica
 * of the state that serves reads locally, the limits the primary keeps for every worker, and the
 * cluster adapter for server-side events between workers. Resolves once the replica holds the
 * primary's snapshot.
 */
export async function connectClusterBackends(link: Sender<WorkerToPrimary>, options: ClusterBackendsOptions): Promise<ClusterBackends> {
  let handlers: BackendHandlers | undefined;
  const store = new ReplicatedStore(link, {
    callTimeoutMs: options.storeCallTimeoutMs,
    // Every worker learns of a dead worker's peers from the primary and tells its own connections.
    onDepartures: (departures) => handlers?.announceDepartures(departures, false),
  });
  const limits = new ClusterLimits(link, {
    callTimeoutMs: options.limitsCallTimeoutMs,
    insurance: createMemoryRegistrationLimits(options.addressRegistrations),
  });
  const receive = (message: StoreReply | LimitsResults): void => {
    if (message.ps === "limits-result" || message.ps === "limits-batch") limits.receive(message);
    else store.receive(message);
  };
  const backends: ClusterBackends = {
    store,
    budgetStore: limits.budgets,
    registrationLimits: limits.registrations,
    adapter: createAdapter(),
    health: () => ({}),
    receive,
    primaryGone() {
      store.primaryGone();
      limits.primaryGone();
    },
    machineStopping() {
      store.machineStopping();
      limits.machineStopping();
    },
    async attach(given) {
      handlers = given;
    },
    async close() {
      await limits.close();
      await store.close();
    },
  };
  options.onCreated(backends);
  await store.start();
  return backends;
}
