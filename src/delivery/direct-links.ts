import { existsSync, unlinkSync } from "node:fs";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Logger } from "../observability/logger.ts";

/** Receives a message for a connection of this process: target fingerprint, event type, serialized body. */
export type DirectHandler = (fingerprint: string, type: string, bodyJson: string) => void;

const LINKS_PER_WORKER = 4;

/** Where the worker `nodeId` listens. */
export const directLinkPath = (nodeId: string): string => join(tmpdir(), `peer-server-${nodeId}.sock`);

/**
 * Worker-to-worker sockets for messages addressed to one peer (signal, relay).
 *
 * Why: through the cluster adapter every targeted emit goes worker -> primary -> every other
 * worker, so a cross-worker signal costs two IPC hops, work on the primary and work on workers
 * that do not hold the target; on this 2-core machine that made 2 workers 0.2-0.5x one worker.
 * The replicated store tells the sender which worker holds the target, so the message goes there
 * in one hop, already serialized, and the receiving worker writes it out without parsing it.
 *
 * Each worker listens on a Unix socket whose path is derived from the primary's pid and the node
 * id, so a sender needs no table to find it. Frames are lines: `fingerprint \t type \t body\n`
 * (serialized JSON never contains a raw newline or tab outside strings, where they are escaped).
 */
export class DirectLinks {
  private readonly server: Server;
  private readonly outgoing = new Map<string, Socket>();
  private readonly incoming = new Set<Socket>();
  /** Frames waiting for the end of this turn of the event loop, per link: one write each. */
  private readonly batches = new Map<Socket, string[]>();
  private flushScheduled = false;
  private readonly flush = (): void => {
    this.flushScheduled = false;
    for (const [socket, frames] of this.batches) socket.write(frames.length === 1 ? (frames[0] as string) : frames.join(""));
    this.batches.clear();
  };
  private handler: DirectHandler = () => undefined;

  /**
   * @param nodeId this worker's node id
   * @param machine prefix shared by the node ids of this machine's workers (`<machine>.w<i>-...`):
   *   only those can be reached directly; others (nodes elsewhere, through Redis) cannot.
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
    const path = this.pathOf(this.nodeId);
    if (existsSync(path)) unlinkSync(path);
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(path, () => resolve());
    });
  }

  onDeliver(handler: DirectHandler): void {
    this.handler = handler;
  }

  /**
   * Sends one message to the worker `nodeId` if it is on this machine (false otherwise: use the
   * adapter); dropped if that worker is gone (its peers are being removed).
   */
  send(nodeId: string, fingerprint: string, type: string, bodyJson: string): boolean {
    if (!nodeId.startsWith(this.machine) || nodeId.charCodeAt(this.machine.length) !== 46 /* . */) return false;
    // Several links per worker pair: the receiver reads at most 64 KB per link per turn of its
    // event loop, so one link capped cross-worker traffic (pairs across workers starved in the
    // cluster bench). A target always uses the same link, so its messages stay in order.
    const key = `${nodeId}#${fingerprint.charCodeAt(0) % LINKS_PER_WORKER}`;
    let socket = this.outgoing.get(key);
    if (socket === undefined) {
      socket = createConnection(this.pathOf(nodeId));
      socket.setNoDelay(true);
      const opened = socket;
      opened.on("error", (error) => this.logger.debug({ err: error, nodeId }, "direct link failed"));
      opened.on("close", () => {
        if (this.outgoing.get(key) === opened) this.outgoing.delete(key);
      });
      this.outgoing.set(key, opened);
    }
    // Many signals are handled per turn of the event loop; one write per link per turn saves a
    // system call per message on both ends.
    const frame = `${fingerprint}\t${type}\t${bodyJson}\n`;
    const batch = this.batches.get(socket);
    if (batch === undefined) this.batches.set(socket, [frame]);
    else batch.push(frame);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flush);
    }
    return true;
  }

  async close(): Promise<void> {
    for (const socket of this.outgoing.values()) socket.destroy();
    this.outgoing.clear();
    // server.close() waits for open connections; the other workers' links would keep it open.
    for (const socket of this.incoming) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private pathOf(nodeId: string): string {
    return directLinkPath(nodeId);
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
        const firstTab = data.indexOf("\t", start);
        const secondTab = data.indexOf("\t", firstTab + 1);
        this.handler(data.slice(start, firstTab), data.slice(firstTab + 1, secondTab), data.slice(secondTab + 1, end));
        start = end + 1;
      }
      partial = start === data.length ? "" : data.slice(start);
      data = "";
    });
    socket.on("error", () => socket.destroy());
  }
}
