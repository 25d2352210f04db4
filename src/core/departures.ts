import { scopeRoom, type Delivery } from "../delivery/delivery.ts";
import type { ServerBody } from "../protocol/server-messages.ts";
import type { Departure } from "../backends/state-store.ts";

/**
 * Tells the members of every namespace and room a peer left that it is gone (one peer_left each),
 * except the connection that left: a replaced one is still open until its close notice is out.
 */
export function announceDeparture(delivery: Delivery, departure: Departure, connectionId: string): void {
  for (const name of departure.scopes) {
    const body = { from: departure.fingerprint, namespace: name } satisfies ServerBody<"peer_left">;
    void delivery.emit(scopeRoom(name), "peer_left", body, [connectionId]);
  }
}

/**
 * Tells members about peers that were removed for a dead process or node. `everywhere`: this
 * process alone learned of it (it reaped the node through Redis), so it tells every node;
 * otherwise every process learned it (the cluster's replicated store) and tells its own.
 */
export function announceRemoved(delivery: Delivery, departures: readonly Departure[], everywhere: boolean): void {
  for (const departure of departures) {
    for (const name of departure.scopes) {
      const body = { from: departure.fingerprint, namespace: name } satisfies ServerBody<"peer_left">;
      if (everywhere) void delivery.emit(scopeRoom(name), "peer_left", body);
      else delivery.emitLocal(scopeRoom(name), "peer_left", body);
    }
  }
}
