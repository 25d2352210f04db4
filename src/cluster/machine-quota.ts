import type { Config } from "../config/load.ts";
import { AddressQuota, QUOTA_REFUSALS } from "../limits/address-quota.ts";

/** The verdict on a new connection: refused with an HTTP status and why, or let in counted against `address` (none: not counted). */
export type MachineAdmission = { readonly refuse: { readonly status: number; readonly reason: string } } | { readonly address: string | undefined };

/**
 * The per-address limits of a cluster's whole machine (max_connections_per_ip,
 * connection_rate_per_ip / connection_burst_per_ip), kept by the primary: the worker that accepted
 * a new connection that will stay (a WebSocket upgrade, a new Engine.IO session) asks it before the
 * connection goes on (`admit`), and it counts the connection or refuses it with 429; the worker
 * reports each counted connection's end (`quota-release`, see HandOffReceiver), and a worker that
 * dies releases everything it held. Counts and releases are per connection, so the count is exact
 * but for the reports in flight (at most one turn of a worker's event loop late). Over TLS only
 * the worker can read requests: the primary routes by client address, so all of an address's
 * connections reach one worker, which counts them itself.
 */
export class MachineQuota {
  private readonly quota: AddressQuota;
  /** Per worker (its cluster id, unique per fork): what it holds, by address, to release if it dies. */
  private readonly held = new Map<number, Map<string, number>>();

  constructor(config: Pick<Config, "maxConnectionsPerIp" | "connectionRatePerIp" | "connectionBurstPerIp">, now: () => number) {
    this.quota = new AddressQuota({ maxConnections: config.maxConnectionsPerIp, ratePerSec: config.connectionRatePerIp, burst: config.connectionBurstPerIp, now });
  }

  /** Decides a new long-lived connection of client `address` (none: let in uncounted); "ok" counts it, to be given to `handedOff`. */
  admit(address: string | undefined): MachineAdmission {
    if (address === undefined) return { address: undefined };
    const verdict = this.quota.take(address);
    // The same answer as one process's connection gate gives.
    return verdict === "ok" ? { address } : { refuse: { status: 429, reason: QUOTA_REFUSALS[verdict] } };
  }

  /** A connection counted by `admit` went to `worker`. */
  handedOff(worker: number, address: string): void {
    let addresses = this.held.get(worker);
    if (addresses === undefined) this.held.set(worker, (addresses = new Map()));
    addresses.set(address, (addresses.get(address) ?? 0) + 1);
  }

  /** Connections counted by `admit` ended: on `worker` (its report), or before any worker got them (undefined). */
  released(worker: number | undefined, addresses: readonly string[]): void {
    const held = worker === undefined ? undefined : this.held.get(worker);
    // A report from a worker already gone: workerGone released all it held.
    if (worker !== undefined && held === undefined) return;
    for (const address of addresses) {
      if (held !== undefined) {
        const count = held.get(address);
        if (count === undefined) continue;
        if (count <= 1) held.delete(address);
        else held.set(address, count - 1);
      }
      this.quota.release(address);
    }
  }

  /** `worker` is gone: every connection it held is over. */
  workerGone(worker: number): void {
    const held = this.held.get(worker);
    this.held.delete(worker);
    if (held === undefined) return;
    for (const [address, count] of held) for (let i = 0; i < count; i++) this.quota.release(address);
  }
}
