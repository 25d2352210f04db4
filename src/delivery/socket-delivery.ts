import type { Namespace, Server as SocketIoServer } from "socket.io";
import type { Logger } from "../observability/logger.ts";
import type { Metrics } from "../observability/metrics.ts";
import type { CloseCode, ErrorCode } from "../protocol/errors.ts";
import type { DirectLinks } from "./direct-links.ts";
import { peerRoom, type Delivery } from "./delivery.ts";
import { emitThroughAdapter } from "./join-fence.ts";

/** Server-to-server event that closes a connection wherever it is (carried by the adapter). */
export const CLOSE_EVENT = "peer-server:close";

export interface SocketDeliveryOptions {
  io: SocketIoServer;
  logger: Logger;
  /** Other processes share the world through the adapter (cluster or Redis). */
  clustered: boolean;
  /**
   * The workers of this machine, when they share its world through the primary (no Redis): then
   * every message for another worker takes a link, targeted or for rooms, and the adapter carries
   * only server-side events. With Redis every message for another process goes through Redis.
   */
  links?: DirectLinks;
  /** Writes an already serialized message to a connection of this process, if it is here (then true). */
  deliverEncoded(fingerprint: string, type: string, bodyJson: string): boolean;
  /** Observes the delivery time of the timed messages that arrive over the links. */
  metrics: Metrics;
}

/**
 * Delivery over Socket.IO's adapter, for both transports (raw /ws peers are adapter sockets too,
 * see transport/raw-ws.ts), plus the direct worker links of a machine.
 *
 * How order is kept (see the Delivery contract):
 * - one process: the in-memory adapter delivers synchronously;
 * - workers of one machine: this process's connections are served synchronously, every other
 *   worker gets the message over the link its origin always uses;
 * - nodes on Redis: every message for another node is published on one connection in call order,
 *   and each node reads them from one subscriber connection; the sharded adapter serves this
 *   node's own connections only after its publish, so emit returns that promise for the caller to
 *   await. (On a Redis Cluster, channels live on different shards: order holds per channel, that
 *   is per room and per target peer, not across them.)
 */
export function createSocketDelivery(options: SocketDeliveryOptions): Delivery {
  const { io, logger, links, metrics } = options;
  const nsp: Namespace = io.of("/");
  const failed = (error: unknown): void => logger.error({ err: error }, "adapter broadcast failed");
  const roomList = (rooms: string | readonly string[]): readonly string[] => (typeof rooms === "string" ? [rooms] : rooms);
  const leaveHere = (selector: string, room: string): Promise<void> | undefined => {
    const pending: unknown = nsp.adapter.delSockets({ rooms: new Set([selector]), except: new Set(), flags: { local: links !== undefined } }, [room]);
    return pending instanceof Promise ? pending.catch(failed) : undefined;
  };

  const joinHere = (selector: string, room: string): Promise<void> | undefined => {
    const pending: unknown = nsp.adapter.addSockets({ rooms: new Set([selector]), except: new Set(), flags: { local: links !== undefined } }, [room]);
    return pending instanceof Promise ? pending.catch(failed) : undefined;
  };

  links?.onReceive({
    toPeer: (fingerprint, type, bodyJson, receivedAt) => {
      if (options.deliverEncoded(fingerprint, type, bodyJson) && receivedAt > 0) metrics.signalDelivered(receivedAt);
    },
    toRooms: (route, type, bodyJson) => {
      emitThroughAdapter(nsp, route.rooms, route.except, type, JSON.parse(bodyJson) as unknown, { fence: route.fence, local: true }, failed);
    },
    leave: (selector, room) => void leaveHere(selector, room),
    join: (selector, room) => void joinHere(selector, room),
  });

  return {
    toPeer(target, type, body, bodyJson, receivedAt = 0) {
      if (links !== undefined && links.isSibling(target.nodeId)) {
        links.toPeer(target.nodeId, body.from ?? "", target.fingerprint, type, bodyJson ?? JSON.stringify(body), receivedAt);
        return;
      }
      void emitThroughAdapter(nsp, [peerRoom(target.fingerprint)], [], type, body, { receivedAt }, failed);
    },
    emit(rooms, type, body, except, fence, origin) {
      const list = roomList(rooms);
      if (list.length === 0) return undefined; // an empty room list would mean "everyone"
      if (links === undefined) return emitThroughAdapter(nsp, list, except ?? [], type, body, { fence }, failed);
      emitThroughAdapter(nsp, list, except ?? [], type, body, { fence, local: true }, failed);
      // An undefined fence is left out when the route is serialized.
      links.toRooms(origin ?? body.from ?? "", { rooms: list, except: except ?? [], fence }, type, JSON.stringify(body));
      return undefined;
    },
    emitLocal(room, type, body) {
      void emitThroughAdapter(nsp, [room], [], type, body, { local: true }, failed);
    },
    leave(selector, room, origin) {
      if (links === undefined) return leaveHere(selector, room);
      void leaveHere(selector, room);
      links.leave(origin, selector, room);
      return undefined;
    },
    join(selector, room, origin) {
      if (links === undefined) return joinHere(selector, room);
      void joinHere(selector, room);
      links.join(origin, selector, room);
      return undefined;
    },
    closeElsewhere(connectionId: string, code: ErrorCode, closeCode: CloseCode, message: string) {
      if (options.clustered) io.serverSideEmit(CLOSE_EVENT, connectionId, code, closeCode, message);
    },
  };
}
