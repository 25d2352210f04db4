import { existsSync, unlinkSync } from "node:fs";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Logger } from "../observability/logger.ts";
import type { JoinFence } from "./delivery.ts";

/** Where a room emit from another worker goes on this one. */
export interface RoomRoute {
  readonly rooms: readonly string[];
  readonly except: readonly string[];
  readonly fence?: JoinFence;
}

/** What arrives over the links, handled by the delivery of the receiving worker. */
export interface DirectHandlers {
  /**
   * A message for one connection of this process: target fingerprint, event type, serialized body,
   * and when the sending worker received it (a Metrics.now() stamp; 0 when it was not timed).
   */
  toPeer(fingerprint: string, type: string, bodyJson: string, receivedAt: number): void;
  /** A room emit for this process's connections. */
  toRooms(route: RoomRoute, type: string, bodyJson: string): void;
  /** Connections of this process in room `selector` leave `room`. */
  leave(selector: string, room: string): void;
  /** Connections of this process in room `selector` enter `room`. */
  join(selector: string, room: string): void;
}

const LINKS_PER_WORKER = 4;
const PEER_FRAME = "P";
const TIMED_PEER_FRAME = "T";
const ROOMS_FRAME = "R";
const LEAVE_FRAME = "L";
const JOIN_FRAME = "J";

/** Where the worker `nodeId` listens. */
export const directLinkPath = (nodeId: string): string => join(tmpdir(), `peer-server-${nodeId}.sock`);

/**
 * Worker-to-worker sockets: every message from one worker to another of the machine, targeted or
 * for rooms, goes over them in one hop, without the primary.
 *
 * Why: through the cluster adapter every emit goes worker -> primary -> every other worker: two IPC
 * hops and work on the primary; for signals that made 2 workers 0.2-0.5x one worker. And one path
 * for every kind of message keeps their order: all messages of one origin (the peer whose action
 * they are) to one worker use the same link, so a relay sent after a broadcast arrives after it.
 *
 * Each worker listens on a Unix socket whose path is derived from its node id, so a sender needs no
 * table to find it; the siblings to fan room emits out to come from the primary. Frames are lines
 * of tab-separated fields (serialized JSON never contains a raw newline or tab outside strings,
 * where they are escaped): `P fingerprint type body`, `T fingerprint type receivedAt body` (the same,
 * timed for the metrics), `R route type body`, `L selector room`, `J selector room`.
 */
export class DirectLinks {
  private readonly server: Server;
  private readonly outgoing = new Map<string, Socket>();
  private readonly incoming = new Set<Socket>();
  private siblings: readonly string[] = [];
  /** Frames waiting for the end of this turn of the event loop, per link: one write each. */
  private readonly batches = new Map<Socket, string[]>();
  private flushScheduled = false;
  private readonly flush = (): void => {
    this.flushScheduled = false;
    for (const [socket, frames] of this.batches) socket.write(frames.length === 1 ? (frames[0] as string) : frames.join(""));
    this.batches.clear();
  };
  private handlers: DirectHandlers | undefined;

  /**
   * @param nodeId this worker's node id
   * @param machine prefix shared by the node ids of this machine's workers (`<machine>.w<i>-...`):
   *   only those can be reached directly.
   */
  constructor(
    private readonly nodeId: string,
    private readonly machine: string,
    private readonly logger: Logger,
  ) {
    this.server = createServer((socket) => this.accept(socket));
  }

  /** Starts listening for the other workers. */
  async listen(): Promise<void> {
    const path = directLinkPath(this.nodeId);
    if (existsSync(path)) unlinkSync(path);
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(path, () => resolve());
    });
  }

  /** Who handles what arrives; set once by the delivery. */
  onReceive(handlers: DirectHandlers): void {
    this.handlers = handlers;
  }

  /** The machine's other ready workers, as the primary announces them (this worker is left out). */
  setSiblings(nodeIds: readonly string[]): void {
    this.siblings = nodeIds.filter((nodeId) => nodeId !== this.nodeId && this.isSibling(nodeId));
  }

  /** True when `nodeId` is another worker of this machine, reachable here. */
  isSibling(nodeId: string): boolean {
    return nodeId !== this.nodeId && nodeId.startsWith(this.machine) && nodeId.charCodeAt(this.machine.length) === 46 /* . */;
  }

  /**
   * Sends one message to the connection of `fingerprint` on the worker `nodeId`; dropped if that
   * worker is gone. `receivedAt` above 0 goes with it (a `T` frame) for the delivery-time metric.
   */
  toPeer(nodeId: string, origin: string, fingerprint: string, type: string, bodyJson: string, receivedAt = 0): void {
    const frame = receivedAt > 0 ? `${TIMED_PEER_FRAME}\t${fingerprint}\t${type}\t${receivedAt}\t${bodyJson}\n` : `${PEER_FRAME}\t${fingerprint}\t${type}\t${bodyJson}\n`;
    this.write(nodeId, origin, frame);
  }

  /** Sends a room emit to every other worker of the machine. */
  toRooms(origin: string, route: RoomRoute, type: string, bodyJson: string): void {
    if (this.siblings.length === 0) return;
    const frame = `${ROOMS_FRAME}\t${JSON.stringify(route)}\t${type}\t${bodyJson}\n`;
    for (const nodeId of this.siblings) this.write(nodeId, origin, frame);
  }

  /** Makes the connections in room `selector` on every other worker leave `room`. */
  leave(origin: string, selector: string, room: string): void {
    for (const nodeId of this.siblings) this.write(nodeId, origin, `${LEAVE_FRAME}\t${selector}\t${room}\n`);
  }

  /** Makes the connections in room `selector` on every other worker enter `room`. */
  join(origin: string, selector: string, room: string): void {
    for (const nodeId of this.siblings) this.write(nodeId, origin, `${JOIN_FRAME}\t${selector}\t${room}\n`);
  }

  async close(): Promise<void> {
    for (const socket of this.outgoing.values()) socket.destroy();
    this.outgoing.clear();
    // server.close() waits for open connections; the other workers' links would keep it open.
    for (const socket of this.incoming) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /**
   * Several links per worker pair: the receiver reads at most 64 KB per link per turn of its event
   * loop, so one link capped cross-worker traffic. An origin always uses the same link: its
   * messages stay in order.
   */
  private write(nodeId: string, origin: string, frame: string): void {
    // The last character: dialect identities share their first ones (`pigeon:`), fingerprints are hex throughout.
    const key = `${nodeId}#${origin.length === 0 ? 0 : origin.charCodeAt(origin.length - 1) % LINKS_PER_WORKER}`;
    let socket = this.outgoing.get(key);
    if (socket === undefined) {
      socket = createConnection(directLinkPath(nodeId));
      socket.setNoDelay(true);
      const opened = socket;
      opened.on("error", (error) => this.logger.debug({ err: error, nodeId }, "direct link failed"));
      opened.on("close", () => {
        if (this.outgoing.get(key) === opened) this.outgoing.delete(key);
      });
      this.outgoing.set(key, opened);
    }
    // Many messages are handled per turn of the event loop; one write per link per turn saves a
    // system call per message on both ends.
    const batch = this.batches.get(socket);
    if (batch === undefined) this.batches.set(socket, [frame]);
    else batch.push(frame);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flush);
    }
  }

  private accept(socket: Socket): void {
    this.incoming.add(socket);
    socket.once("close", () => this.incoming.delete(socket));
    socket.setEncoding("utf8");
    let partial = "";
    socket.on("data", (chunk: string) => {
      let start = 0;
      let data = partial.length === 0 ? chunk : partial + chunk;
      for (let end = data.indexOf("\n"); end >= 0; end = data.indexOf("\n", start)) {
        this.dispatch(data, start, end);
        start = end + 1;
      }
      partial = start === data.length ? "" : data.slice(start);
      data = "";
    });
    socket.on("error", () => socket.destroy());
  }

  /** Handles the frame data[start, end). A frame that fails is logged and skipped: the link goes on. */
  private dispatch(data: string, start: number, end: number): void {
    const handlers = this.handlers;
    if (handlers === undefined) return;
    const first = data.indexOf("\t", start);
    const second = data.indexOf("\t", first + 1);
    try {
      switch (data.slice(start, first)) {
        case PEER_FRAME: {
          const third = data.indexOf("\t", second + 1);
          handlers.toPeer(data.slice(first + 1, second), data.slice(second + 1, third), data.slice(third + 1, end), 0);
          break;
        }
        case TIMED_PEER_FRAME: {
          const third = data.indexOf("\t", second + 1);
          const fourth = data.indexOf("\t", third + 1);
          handlers.toPeer(data.slice(first + 1, second), data.slice(second + 1, third), data.slice(fourth + 1, end), integerAt(data, third + 1, fourth));
          break;
        }
        case ROOMS_FRAME: {
          const third = data.indexOf("\t", second + 1);
          handlers.toRooms(JSON.parse(data.slice(first + 1, second)) as RoomRoute, data.slice(second + 1, third), data.slice(third + 1, end));
          break;
        }
        case LEAVE_FRAME:
          handlers.leave(data.slice(first + 1, second), data.slice(second + 1, end));
          break;
        case JOIN_FRAME:
          handlers.join(data.slice(first + 1, second), data.slice(second + 1, end));
          break;
        default:
          this.logger.warn({ frame: data.slice(start, Math.min(end, start + 80)) }, "unknown direct link frame");
      }
    } catch (error) {
      this.logger.error({ err: error }, "direct link frame failed");
    }
  }
}

/** The decimal digits data[start, end) (a stamp this module wrote) as a number, read in place. */
function integerAt(data: string, start: number, end: number): number {
  let value = 0;
  for (let i = start; i < end; i++) value = value * 10 + data.charCodeAt(i) - 48;
  return value;
}
