import type { Namespace } from "socket.io";
import { socketIoParserLibrary } from "../internals/socketio-parser-library.ts";
import { hookAdapterDeliveries, type AdapterRecipient, type DeliveryOptions } from "../internals/library-internals.ts";
import type { JoinFence } from "./delivery.ts";

const { PacketType } = socketIoParserLibrary;

/**
 * Makes a joining peer's view of a namespace exact when other processes share it: it hears
 * `peer_joined` for every peer its `peer_list` did not show, once, and never for one it did.
 *
 * Without this, two peers joining at the same moment on different processes race both ways. B's
 * join reaches the store after A's, so B's list has A, while A's notice (emitted by A's process once
 * its store call returns) can still reach B's process after B entered the adapter room: B hears of
 * A twice. Or the store puts B first, and A's process emits its notice before B's process has put
 * B in the adapter room (a worker handles the IPC messages of one read before any promise
 * continuation runs; with the sharded Redis adapter B's node may not even subscribe to the room's
 * channel yet): A is never told of B.
 *
 * So the hub puts a joining connection in the adapter room before asking the store, and holds
 * whatever reaches it through that room until its reply is sent (the RecipientFilter, core/join-gate.ts). How long is bounded
 * by the store's call timeout (1 s for Redis, 5 s over the cluster's IPC), and what is released
 * then meets the usual send-buffer (slow consumer) check like any other delivery. Every join has a seq
 * from the store (JoinResult.seq, increasing in join order); peer_joined carries its joiner's seq
 * as a broadcast flag, which every adapter (in-memory, cluster, Redis classic and sharded) passes on
 * untouched, and the hub drops a notice whose joiner has a lower seq than the recipient's own
 * join: the recipient's list had it.
 *
 * The filter sits where every adapter, for local emits and for those arriving from other processes
 * alike, picks the recipients of a broadcast on this process (hookAdapterDeliveries, a private seam
 * of socket.io-adapter kept with its reasons and start-up check in internals/library-internals.ts).
 * The adapter's other selections (fetchSockets, socketsLeave) must see every socket at once and are
 * never filtered. When no join is in flight and the packet has no fence, the adapter's own
 * selection runs untouched.
 */
/** A message that reached a connection through a room it is still entering; see RecipientFilter.route. */
export interface HeldDelivery {
  fence: JoinFence | undefined;
  deliver: () => void;
}

export interface RecipientFilter {
  /** True when no connection here is entering a room: only fenced packets need routing then. */
  idle(): boolean;
  /**
   * Decides for one recipient on this process: deliver now (true), never (false), or later (the
   * queue to hold it in). `rooms` are the rooms the packet was addressed to.
   */
  route(connectionId: string, rooms: ReadonlySet<string>, fence: JoinFence | undefined): boolean | HeldDelivery[];
}

const FLAG = "peerServerJoinFence";
/** A targeted message's receipt time (Metrics.now() of the process that received it), beside the packet like FLAG. */
const RECEIVED_AT_FLAG = "peerServerReceivedAt";

/**
 * Routes every local delivery of the namespace's adapter through `filter` when it matters. A packet
 * that carries its receipt time (emitThroughAdapter `receivedAt`) is reported to `delivered` with
 * it once handed to its recipient here.
 */
export function installRecipientFilter(nsp: Namespace, filter: RecipientFilter, delivered?: (receivedAt: number) => void): void {
  hookAdapterDeliveries(nsp.adapter, (options, deliver, select) => {
    const fence = fenceOf(options);
    const receivedAt = delivered === undefined ? 0 : receivedAtOf(options);
    const handOff =
      receivedAt > 0
        ? (socket: AdapterRecipient): void => {
            deliver(socket);
            delivered?.(receivedAt);
          }
        : deliver;
    if (fence === undefined && filter.idle()) {
      select(options, handOff);
      return;
    }
    select(options, (socket) => {
      const decision = filter.route(socket.id, options.rooms, fence);
      if (decision === true) handOff(socket);
      else if (decision !== false) decision.push({ fence, deliver: () => deliver(socket) });
    });
  });
}

/** Where a failed adapter broadcast is reported (it never reaches the caller: the emit is fire and forget). */
export type BroadcastFailure = (error: unknown) => void;

/**
 * Emits `type` to the rooms, as io.to(rooms).except(except).emit would, optionally with a join
 * fence attached and only to this process (`local`). The cluster and Redis adapters broadcast
 * asynchronously; a failure there (a publish error, an encoding error) would be an unhandled
 * rejection that ends the process, so it goes to `onFailure` instead.
 */
export function emitThroughAdapter(
  nsp: Namespace,
  rooms: readonly string[],
  except: readonly string[],
  type: string,
  body: unknown,
  options: { fence?: JoinFence | undefined; local?: boolean; receivedAt?: number },
  onFailure: BroadcastFailure,
): Promise<void> | undefined {
  // FLAG is not one of socket.io's own flags: the adapters copy `flags` whole, so it travels with the packet.
  const flags: Record<string, unknown> = {};
  if (options.fence !== undefined) flags[FLAG] = options.fence;
  if (options.local === true) flags["local"] = true;
  if (options.receivedAt !== undefined && options.receivedAt > 0) flags[RECEIVED_AT_FLAG] = options.receivedAt;
  try {
    const pending: unknown = nsp.adapter.broadcast(
      { type: PacketType.EVENT, data: [type, body], nsp: nsp.name },
      { rooms: new Set(rooms), except: new Set(except), flags: flags as Parameters<Namespace["adapter"]["broadcast"]>[1]["flags"] },
    );
    // The cluster-based adapters (cluster, sharded Redis) deliver to this process's own sockets
    // once their publish resolves: the promise says when that happened.
    return pending instanceof Promise ? pending.catch(onFailure) : undefined;
  } catch (error) {
    onFailure(error);
    return undefined;
  }
}

function receivedAtOf(options: DeliveryOptions): number {
  const value = options.flags?.[RECEIVED_AT_FLAG];
  return typeof value === "number" ? value : 0;
}

function fenceOf(options: DeliveryOptions): JoinFence | undefined {
  const value = options.flags?.[FLAG];
  if (typeof value !== "object" || value === null) return undefined;
  const { scope, seq } = value as Partial<JoinFence>;
  return typeof scope === "string" && typeof seq === "number" ? { scope, seq } : undefined;
}
