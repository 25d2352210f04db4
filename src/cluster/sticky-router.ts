import { createHash } from "node:crypto";
import { STATUS_CODES } from "node:http";
import type { Socket } from "node:net";
import type { Config } from "../config/load.ts";
import { refusalBody } from "../http/refusal.ts";
import { systemTimer, type SetTimer } from "../http/request-deadlines.ts";
import { stopReadingAtHandle } from "../internals/library-internals.ts";
import type { Logger } from "../observability/logger.ts";

export type { SetTimer } from "../http/request-deadlines.ts";

/** A worker the router can hand a connection to. */
export interface RouteTarget {
  readonly index: number;
  /**
   * The router's own process (a worker's acceptor handing a connection to itself): the connection
   * does not move, so the router only pauses it; a connection that moves has its reading stopped
   * at the handle, every byte read so far going with it.
   */
  readonly local?: boolean;
  /** Connections the worker holds (its last report plus hand-offs since). */
  readonly load: number;
  /**
   * Sends a socket with the bytes already read from it; the worker replays them (hand-off.ts).
   * `longLived` marks a connection that will stay (an upgrade or a new session); `quota`, the client
   * address `place` counted it against, if it did; `full`, the machine's max_peers verdict when
   * `place` gave one (otherwise the target decides).
   */
  handOff(socket: Socket, data: Buffer, longLived: boolean, quota?: string, full?: boolean): void;
}

/** Where `place` puts a new long-lived connection: refused with an HTTP status and why, or handed to the target `index`. */
export type Placement =
  | { readonly refuse: { readonly status: number; readonly reason: string } }
  | { readonly index: number; readonly quota: string | undefined; readonly full: boolean };

export interface StickyRouterOptions {
  /** With TLS the router cannot read requests: it routes by client address instead. */
  tls: boolean;
  /** Largest request (head and body) the router buffers before handing off. */
  maxRequestBytes: number;
  /**
   * Deadline, from accept, for the request head (through its blank line), in ms. Absolute: bytes
   * arriving do not extend it. Expiry answers 408 and closes.
   */
  headerTimeoutMs: number;
  /** Deadline, from accept, for the whole request (head and body by content-length), in ms; absolute like headerTimeoutMs. */
  readTimeoutMs: number;
  /** How many worker slots there are (indexes 0..slots-1). */
  slots: number;
  /** The workers ready to take connections, by index. */
  targets: () => ReadonlyMap<number, RouteTarget>;
  logger: Logger;
  /** Runs `callback` after `ms` and returns what cancels it. Default: setTimeout; tests pass a fake clock. */
  setTimer?: SetTimer;
  /**
   * Places each new long-lived connection whose request was read (not over TLS): refused with an
   * HTTP status, or handed to the target it names, counted against a client address or not. A
   * worker that accepts connections itself asks the primary this way. The socket waits, not
   * reading, for the answer; a rejection answers 503. Default: the least loaded target, uncounted.
   */
  place?: (socket: Socket, head: string) => Promise<Placement>;
}

/** How a router reads requests, from the server's configuration (the same in the primary and in every worker). */
export function requestReading(config: Pick<Config, "maxMessageSize" | "headerTimeoutMs" | "readTimeoutMs">): Pick<StickyRouterOptions, "maxRequestBytes" | "headerTimeoutMs" | "readTimeoutMs"> {
  return { maxRequestBytes: config.maxMessageSize * 2 + 64 * 1024, headerTimeoutMs: config.headerTimeoutMs, readTimeoutMs: config.readTimeoutMs };
}

const HEAD_END = Buffer.from("\r\n\r\n");
const EMPTY = Buffer.alloc(0);
const MAX_HEAD_BYTES = 16 * 1024;
/**
 * How long a refused connection keeps its socket after the answer, so that the client can read it;
 * then it is destroyed, whether or not the client read it or closed its side.
 */
export const REFUSED_LINGER_MS = 1_000;
const SID = /[?&]sid=w(\d+)-/;
const UPGRADE = /\r\nupgrade:\s*websocket/i;
/** The first request of an Engine.IO long-polling session (no sid yet). */
const NEW_SESSION = /^GET [^ ]*[?&]transport=polling/;

/**
 * Spreads connections over workers, keeping every request of an Engine.IO session on the worker
 * that owns it (long-polling needs that). Engine.IO session ids are minted by each worker with
 * its index as prefix (`w<index>-...`), so routing needs no shared table. It runs in each worker's
 * own acceptor over plain HTTP (WorkerAcceptor: the targets are that worker and, through the
 * primary, the others) and in the primary over TLS.
 *
 * Why not @socket.io/sticky's setupPrimary:
 * - it routes on the first chunk read, so a request head split over two TCP reads is routed on a
 *   fragment and bytes read after it can be lost in the hand-off: a hung connection. Here the whole
 *   request (head and, by content-length, body) is read first, reading stops at the handle, and
 *   everything read so far travels with the socket.
 * - over HTTPS the primary sees only ciphertext and cannot find the session id, so polling breaks.
 *   Here TLS connections are not read at all: they are routed by a hash of the client address
 *   (all of one client's requests land on one worker), and the worker terminates TLS.
 * - keep-alive reuse (a second session's request on a connection already handed to a worker) is
 *   prevented by the worker (hand-off.ts), which answers every HTTP request with `Connection: close`.
 *
 * Slow clients: the head must be complete within headerTimeoutMs of accept and the whole request
 * within readTimeoutMs, however the bytes trickle in (an idle timeout restarts on every byte, so a
 * client sending one header line every few seconds would hold its socket forever). The worker gets
 * a complete request. TLS connections are handed over unread, so the worker enforces the deadlines
 * for them (src/http/request-deadlines.ts): Node's own headersTimeout/requestTimeout never run
 * there (its server does not listen, and Node starts that checker on 'listening').
 */
export class StickyRouter {
  private readonly setTimer: SetTimer;
  /** Whether the missing readStop() was reported: once is enough. */
  private handleWarned = false;

  constructor(private readonly options: StickyRouterOptions) {
    this.setTimer = options.setTimer ?? systemTimer;
  }

  /** Takes a new TCP connection (from a net.Server; `pauseOnConnect` when TLS). */
  accept(socket: Socket): void {
    // Not an arrow function here: it would share this call's closure scope, and keep the request's
    // bytes (`chunks`) alive for as long as the connection lives.
    socket.on("error", destroySocket);
    if (this.options.tls) {
      this.route(socket, undefined, this.byAddress(socket.remoteAddress ?? ""), true);
      return;
    }
    const chunks: Buffer[] = [];
    let length = 0;
    let needed = -1;
    let cancelHead: (() => void) | undefined;
    let cancelRequest: (() => void) | undefined;
    /** Stops the deadlines and the reading: on hand-off, refusal or close. */
    const settle = (): void => {
      cancelHead?.();
      cancelRequest?.();
      cancelHead = cancelRequest = undefined;
      socket.removeListener("data", onData);
      socket.removeListener("close", settle);
    };
    const refuse = (status: number): void => {
      settle();
      this.refuse(socket, status);
    };
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      length += chunk.length;
      const buffered = chunks.length === 1 ? chunk : Buffer.concat(chunks, length);
      if (needed < 0) {
        const headEnd = buffered.indexOf(HEAD_END);
        if (headEnd < 0) {
          if (length > MAX_HEAD_BYTES) refuse(431);
          return;
        }
        cancelHead?.();
        cancelHead = undefined;
        const head = buffered.subarray(0, headEnd).toString("latin1");
        const body = bodyLength(head);
        if (body === undefined) {
          refuse(411);
          return;
        }
        needed = headEnd + HEAD_END.length + body;
        if (needed > this.options.maxRequestBytes) {
          refuse(413);
          return;
        }
      }
      if (length < needed) return;
      settle();
      // What arrives from now on waits in the socket's buffer, behind what was read here.
      socket.pause();
      const head = buffered.subarray(0, needed).toString("latin1");
      const session = this.bySession(head);
      const longLived = session === undefined && (UPGRADE.test(head) || NEW_SESSION.test(head));
      this.route(socket, buffered, session, longLived, head);
    };
    cancelHead = this.setTimer(() => refuse(408), this.options.headerTimeoutMs);
    cancelRequest = this.setTimer(() => refuse(408), this.options.readTimeoutMs);
    socket.on("data", onData);
    socket.once("close", settle);
  }

  /**
   * Hands a connection to `target`, with the bytes the router read from it (none over TLS: the
   * socket was never read). One that moves to another process takes every byte Node has read so
   * far and its reading stops at the handle, in one tick, so that nothing read here is lost.
   */
  private handTo(target: RouteTarget, socket: Socket, data: Buffer | undefined, longLived: boolean, quota?: string, full?: boolean): void {
    const bytes = data === undefined ? EMPTY : target.local === true ? data : this.stopReading(socket, data);
    target.handOff(socket, bytes, longLived, quota, full);
  }

  private stopReading(socket: Socket, buffered: Buffer): Buffer {
    const chunks = [buffered];
    for (let extra = socket.read() as Buffer | null; extra !== null; extra = socket.read() as Buffer | null) chunks.push(extra);
    if (!stopReadingAtHandle(socket) && !this.handleWarned) {
      this.handleWarned = true;
      this.options.logger.error(
        { node: process.version },
        "socket handles have no readStop(): bytes a client sends during its hand-off to a worker can be lost (see src/internals/library-internals.ts)",
      );
    }
    return chunks.length === 1 ? buffered : Buffer.concat(chunks);
  }

  /** `data`: the request the router read; undefined when it read nothing (TLS). */
  private route(socket: Socket, data: Buffer | undefined, index: number | undefined, longLived: boolean, head?: string): void {
    if (longLived && head !== undefined && data !== undefined && this.options.place !== undefined) {
      this.place(this.options.place, socket, data, head);
      return;
    }
    const targets = this.options.targets();
    const target = (index === undefined ? undefined : targets.get(index)) ?? this.leastLoaded(targets);
    if (target === undefined) {
      this.refuse(socket, 503, "no worker is ready");
      return;
    }
    this.handTo(target, socket, data, longLived);
  }

  private place(place: NonNullable<StickyRouterOptions["place"]>, socket: Socket, data: Buffer, head: string): void {
    place(socket, head).then(
      (placement) => {
        if ("refuse" in placement) {
          this.refuse(socket, placement.refuse.status, placement.refuse.reason);
          return;
        }
        // Every index the placement can name has a target (the worker's router routes to all slots).
        const targets = this.options.targets();
        const target = targets.get(placement.index) ?? this.leastLoaded(targets);
        if (target === undefined) this.refuse(socket, 503, "no worker is ready");
        else this.handTo(target, socket, data, true, placement.quota, placement.full);
      },
      (error: unknown) => {
        this.options.logger.debug({ err: error }, "no placement for a connection");
        this.refuse(socket, 503, "the cluster primary did not answer");
      },
    );
  }

  private bySession(head: string): number | undefined {
    const lineEnd = head.indexOf("\r\n");
    const match = SID.exec(lineEnd < 0 ? head : head.slice(0, lineEnd));
    return match === null ? undefined : Number(match[1]);
  }

  /**
   * Hashes over the fixed set of worker slots, not the ones up right now: a worker restarting
   * then moves only its own clients (to the least loaded worker), never the others' sessions.
   */
  private byAddress(address: string): number {
    return createHash("sha1").update(address).digest().readUInt32BE(0) % this.options.slots;
  }

  /** The worker holding the fewest connections; ties are broken at random. */
  private leastLoaded(targets: ReadonlyMap<number, RouteTarget>): RouteTarget | undefined {
    let best: RouteTarget[] = [];
    for (const target of targets.values()) {
      if (best.length === 0 || target.load < (best[0] as RouteTarget).load) best = [target];
      else if (target.load === (best[0] as RouteTarget).load) best.push(target);
    }
    return best[Math.floor(Math.random() * best.length)];
  }

  /** Answers with an HTTP status, and with a reason as the JSON body the workers' refusals carry too. */
  private refuse(socket: Socket, status: number, reason?: string): void {
    this.options.logger.debug({ status, reason }, "router refused a connection");
    const body = reason === undefined ? "" : refusalBody(status, reason);
    const type = reason === undefined ? "" : "Content-Type: application/json\r\n";
    socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ""}\r\nConnection: close\r\n${type}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    // end() only half-closes: a client that neither reads nor closes its side would keep the socket.
    const cancel = this.setTimer(() => socket.destroy(), REFUSED_LINGER_MS);
    socket.once("close", cancel);
  }
}

/** A socket's error listener: the socket is destroyed (its `close` follows). */
function destroySocket(this: Socket): void {
  this.destroy();
}

/** Content-Length of a request head (0 when absent); undefined for chunked bodies, which it cannot bound. */
function bodyLength(head: string): number | undefined {
  const lower = head.toLowerCase();
  if (lower.includes("\r\ntransfer-encoding:")) return undefined;
  const match = /\r\ncontent-length:\s*(\d+)/.exec(lower);
  return match === null ? 0 : Number(match[1]);
}
