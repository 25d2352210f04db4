import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import type { Config } from "../config/load.ts";
import type { Logger } from "../observability/logger.ts";
import { forwardMessage, type AdmittedMessage, type ForwardMessage, type WorkerToPrimary } from "../protocol/cluster-messages.ts";
import { clientAddressResolver, forwardedForOfHead } from "../trust/client-address.ts";
import type { HandOffReceiver } from "./hand-off.ts";
import { requestReading, StickyRouter, type Placement, type RouteTarget } from "./sticky-router.ts";

export interface WorkerAcceptorOptions {
  /** This worker's slot, and how many slots the machine has. */
  readonly index: number;
  readonly workers: number;
  readonly config: Config;
  /** Where connections that stay here go: the same path as the primary's hand-offs. */
  readonly handOffs: HandOffReceiver;
  readonly logger: Logger;
  /** How long an admission may wait for the primary before the connection is answered 503. */
  readonly callTimeoutMs: number;
  send(message: WorkerToPrimary): void;
  /** Sends a connection's socket handle to the primary; `done` gets the error of a failed send. */
  sendSocket(message: ForwardMessage, socket: Socket, done: (error: Error | null) => void): void;
}

interface PendingAdmission {
  resolve: (placement: Placement) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

/**
 * A worker's own acceptor for plain HTTP: every worker listens on the machine's port (the cluster
 * module shares one listening socket, and the kernel gives each connection to one of the workers
 * waiting for it), so a connection costs the primary nothing unless it has to move.
 *
 * Each connection's request is read by the same StickyRouter the primary uses over TLS (deadlines,
 * sizes, session ids). A request of an Engine.IO session that another worker owns is forwarded to
 * that worker through the primary (`forward`, with the socket handle): long-polling and the upgrade
 * of a polling session stay sticky. A new connection that will stay (an upgrade, a new Engine.IO
 * session) is placed by the primary (`admit`): it counts the machine's per-address limits and
 * max_peers, and keeps the workers' loads even, naming a less loaded worker to forward it to when
 * this one holds more than its share. Everything else (a plain HTTP request) is served here at once.
 */
export class WorkerAcceptor {
  private readonly server: Server;
  private readonly pending = new Map<number, PendingAdmission>();
  private nextId = 1;
  /** Set once no admission can be answered: new ones fail at once. */
  private refusal: Error | undefined;

  constructor(private readonly options: WorkerAcceptorOptions) {
    const { config, index } = options;
    const clientAddress = clientAddressResolver(config.trustedProxies);
    const targets = new Map<number, RouteTarget>();
    for (let slot = 0; slot < options.workers; slot++) targets.set(slot, slot === index ? this.localTarget(slot) : this.forwardTarget(slot));
    const router = new StickyRouter({
      tls: false,
      ...requestReading(config),
      slots: options.workers,
      targets: () => targets,
      logger: options.logger,
      place: (socket, head) => this.admit(clientAddress(socket.remoteAddress, forwardedForOfHead(head))),
    });
    // noDelay as Node's HTTP server sets it on the connections it accepts (one process's): at accept.
    this.server = createServer({ noDelay: true }, (socket) => router.accept(socket));
  }

  /** Listens on the machine's port (shared by every worker); resolves with the port. */
  listen(): Promise<number> {
    const { port, host } = this.options.config;
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, host, () => {
        this.server.off("error", reject);
        resolve((this.server.address() as AddressInfo).port);
      });
    });
  }

  /** Stops accepting; admissions still waiting fail (their connections are answered 503). */
  close(reason: string): void {
    this.server.close();
    this.refusal ??= new Error(reason);
    for (const [id, pending] of this.pending) {
      clearTimeout(pending.timer);
      pending.reject(this.refusal);
      this.pending.delete(id);
    }
  }

  /** Takes the primary's answer to an admission. */
  receive(message: AdmittedMessage): void {
    const pending = this.pending.get(message.id);
    if (pending === undefined) {
      // Given up on: the primary counted it for a worker that will never receive it.
      if (!("refuse" in message)) this.lost(message.to, message.full, message.quota);
      return;
    }
    this.pending.delete(message.id);
    clearTimeout(pending.timer);
    pending.resolve("refuse" in message ? { refuse: message.refuse } : { index: message.to, quota: message.quota, full: message.full });
  }

  private admit(address: string | undefined): Promise<Placement> {
    if (this.refusal !== undefined) return Promise.reject(this.refusal);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error("the cluster primary did not answer an admission in time"));
      }, this.options.callTimeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.options.send({ ps: "admit", id, address: address ?? null });
    });
  }

  /** This worker: the connection goes to its HTTP server, as a hand-off from the primary would. */
  private localTarget(index: number): RouteTarget {
    return {
      index,
      local: true,
      // The worker's own slot is where a request of an unknown session goes.
      load: 0,
      handOff: (socket, data, longLived, quota, full = false) => {
        // Closed while its placement was asked: taken as a socket lost in transit (counted, released).
        this.options.handOffs.take(data, { longLived, full, quota }, socket.destroyed ? undefined : socket);
        // The router paused it; the HTTP server reads it now, as a socket newly received.
        socket.resume();
      },
    };
  }

  /** Another worker: the connection goes to it through the primary, with the bytes read so far. */
  private forwardTarget(index: number): RouteTarget {
    return {
      index,
      load: Number.POSITIVE_INFINITY,
      handOff: (socket, data, longLived, quota, full = false) => {
        this.options.sendSocket(forwardMessage(index, data, longLived, full, quota), socket, (error) => {
          if (error === null) return;
          socket.destroy();
          if (longLived) this.lost(index, full, quota);
        });
      },
    };
  }

  /**
   * A connection the primary placed on worker `to` will never reach it: its count and its place in
   * `to`'s load are released, here (a hand-off received without a socket) or by the primary (a
   * forward without one).
   */
  private lost(to: number, full: boolean, quota: string | undefined): void {
    if (to === this.options.index) this.options.handOffs.take(Buffer.alloc(0), { longLived: true, full, quota }, undefined);
    else this.options.send(forwardMessage(to, Buffer.alloc(0), true, full, quota));
  }
}
