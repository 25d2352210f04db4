import { hash } from "node:crypto";
import { randomToken } from "../trust/random-tokens.ts";
import { identityKind, type PeerRecord } from "../backends/state-store.ts";
import type { HeldDelivery } from "../delivery/join-fence.ts";
import type { ConnectionEnd } from "../observability/connection-log.ts";
import type { Body } from "../protocol/envelope.ts";
import { CloseCode } from "../protocol/errors.ts";
import type { Connection } from "./connection.ts";
import type { CoreContext } from "./context.ts";
import { announceRemoved } from "./departures.ts";
import type { Session } from "./session.ts";

/** Random bytes of a resume token: as unguessable as a challenge nonce. */
const TOKEN_BYTES = 32;

/**
 * Closes for cause: the peer departs at once. The server's own, and the WebSocket library's for a
 * protocol violation (1002, 1003, 1007; 1009 past twice max_message_size). The server's shutdown
 * (1001) is decided apart (suspendOnShutdown); a keepalive timeout, or any other close of the
 * client's side, suspends.
 */
/** The WebSocket close code of a deliberate, normal closure. */
const NORMAL_CLOSURE = 1000;
/** Socket.IO's disconnect reason when the client sent its disconnect packet (`socket.disconnect()`). */
const SOCKET_IO_GOODBYE = "client namespace disconnect";
const FOR_CAUSE: ReadonlySet<number> = new Set<number>([
  1002,
  1003,
  1007,
  CloseCode.PolicyViolation,
  CloseCode.MessageTooBig,
  CloseCode.TryAgainLater,
  CloseCode.Replaced,
  CloseCode.SlowConsumer,
  CloseCode.TokenExpired,
  CloseCode.Disconnected,
]);

/** How often every process looks for suspensions that ended (bounds, in ms): a process may die with its timers. */
const MIN_SWEEP_MS = 250;
const MAX_SWEEP_MS = 5_000;
/**
 * The timer of a suspension made here fires this much after its grace: the wall clock the store
 * compares with may trail the timer's by a few ms, and a sweep a moment early finds nothing.
 */
const SWEEP_MARGIN_MS = 20;

/** The stored form of a resume token (hex SHA-256): the store never holds a token a client could present. */
export const resumeHashOf = (token: string): string => hash("sha256", token, "hex");

/** What resumption uses, with the options that shape it. */
export interface ResumptionContext extends Pick<CoreContext, "store" | "delivery" | "clock" | "logger"> {
  /** resume_grace, in ms; 0 turns resume off. */
  readonly graceMs: number;
  /** resume_buffer: messages kept per suspended peer. */
  readonly bufferSize: number;
  /** Whether the server's own shutdown (close 1001) suspends its peers: true when the state outlives this process (Redis). */
  readonly suspendOnShutdown: boolean;
}

/** A peer whose connection here dropped, for its grace: what reached this process for it meanwhile. */
interface Dropped {
  /** Deliveries that arrived while its suspension was at the store, in order; undefined once it answered. */
  pending: [type: string, bodyJson: string][] | undefined;
}

/** A resume waiting for the store here: deliveries over the direct worker links wait with the room's. */
interface Resuming {
  readonly connection: Connection;
  readonly held: HeldDelivery[];
}

/**
 * Session resume: a native peer whose connection drops stays registered, in its namespaces, rooms
 * and queues, for resume_grace ("suspended"); targeted messages for it wait in a bounded buffer in
 * the state store, which a `register` with its resume token takes with the registration, on any
 * process. When the grace runs out, whoever sweeps first departs it as a disconnect would.
 *
 * This module decides which closes suspend, suspends, buffers, catches the deliveries that raced a
 * suspension or a resume on this process, and sweeps ended suspensions (a timer per suspension made
 * here, and a periodic sweep on every process for those whose process died). Registration runs the
 * resume itself.
 */
export class Resumption {
  private readonly dropped = new Map<string, Dropped>();
  private readonly resuming = new Map<string, Resuming>();
  private sweeping: Promise<void> | undefined;
  private sweepAgain = false;
  private cancelTick: (() => void) | undefined;
  private stopped = false;

  constructor(private readonly ctx: ResumptionContext) {}

  /** False with resume_grace 0: no tokens, no suspensions, every close departs as it always did. */
  get enabled(): boolean {
    return this.ctx.graceMs > 0;
  }

  /** A fresh token and its hash for a native registration; undefined when resume is off. */
  issue(): { token: string; hash: string } | undefined {
    if (!this.enabled) return undefined;
    const token = randomToken(TOKEN_BYTES);
    return { token, hash: resumeHashOf(token) };
  }

  /**
   * Whether a closed session's peer is suspended rather than departed: a native peer holding a
   * token, whose connection ended other than by the server for cause. `end` undefined (a close
   * whose cause is unknown) departs.
   */
  suspends(session: Session, end: ConnectionEnd | undefined): boolean {
    if (!this.enabled || session.resumeToken === undefined || end === undefined) return false;
    if (end.code !== undefined && FOR_CAUSE.has(end.code)) return false;
    // A client that says goodbye means it: a WebSocket close with 1000, or Socket.IO's disconnect
    // packet. Resume is for connections that drop (a broken network, a closed tab: 1001, 1005, 1006).
    if (!end.byServer && (end.code === NORMAL_CLOSURE || end.reason === SOCKET_IO_GOODBYE)) return false;
    return end.code !== CloseCode.GoingAway || !end.byServer || this.ctx.suspendOnShutdown;
  }

  /**
   * The connection of `fingerprint` on this process just dropped and its peer is to be suspended:
   * from now on what reaches this process for it is kept for it (see straggler). Called as the
   * session closes, before anything waits.
   */
  dropping(fingerprint: string): void {
    this.dropped.set(fingerprint, { pending: [] });
  }

  /**
   * Suspends the peer of a connection of this process that dropped; false when the connection no
   * longer held it (taken over meanwhile). Rejects when the store cannot be reached. What reaches
   * this process for the peer from `dropping` until its grace ends goes to its buffer.
   */
  async suspend(fingerprint: string, connectionId: string): Promise<boolean> {
    const { store, clock, graceMs } = this.ctx;
    let dropped = this.dropped.get(fingerprint);
    if (dropped?.pending === undefined) {
      dropped = { pending: [] };
      this.dropped.set(fingerprint, dropped);
    }
    const entry = dropped;
    let suspended = false;
    try {
      suspended = await store.suspendPeer(fingerprint, connectionId, clock.now() + graceMs);
      return suspended;
    } finally {
      const pending = entry.pending ?? [];
      entry.pending = undefined;
      if (suspended) {
        clock.setTimer(() => {
          if (this.dropped.get(fingerprint) === entry) this.dropped.delete(fingerprint);
          void this.sweepSoon();
        }, graceMs + SWEEP_MARGIN_MS);
      } else if (this.dropped.get(fingerprint) === entry) this.dropped.delete(fingerprint);
      if (pending.length > 0) void this.redirectAll(fingerprint, pending);
    }
  }

  /**
   * Suspends again a peer whose connection closed while its resume was at the store (the store had
   * given it that connection already), with the messages the resume had taken back in its buffer.
   */
  async resuspend(fingerprint: string, connectionId: string, messages: readonly string[]): Promise<void> {
    try {
      if (!(await this.suspend(fingerprint, connectionId))) return;
      for (const message of messages) await this.ctx.store.bufferMessage([fingerprint], message, this.ctx.bufferSize);
    } catch (error) {
      this.ctx.logger.warn({ err: error, fingerprint }, "could not suspend a peer whose connection closed during its resume");
    }
  }

  /**
   * A resume of `fingerprint` is at the store for `connection`: what the direct worker links bring
   * for it meanwhile joins `held` (the queue of its own adapter room).
   */
  beginResume(fingerprint: string, connection: Connection, held: HeldDelivery[]): void {
    this.resuming.set(fingerprint, { connection, held });
  }

  /** The resume of `fingerprint` on `connection` is over (done, refused or abandoned). */
  endResume(fingerprint: string, connection: Connection): void {
    if (this.resuming.get(fingerprint)?.connection === connection) this.resuming.delete(fingerprint);
  }

  /**
   * A delivery for a fingerprint no session of this process holds (Hub.deliverEncoded missed it).
   * If its resume is at the store here, it waits for the resumed `registered`; if its connection
   * here dropped within the grace, it goes to the peer's buffer (or, resumed elsewhere meanwhile,
   * on to it there): a message that raced the suspension is not lost. False when it is neither:
   * the delivery is dropped as before.
   */
  straggler(fingerprint: string, type: string, bodyJson: string): boolean {
    const resuming = this.resuming.get(fingerprint);
    if (resuming !== undefined) {
      resuming.held.push({ fence: undefined, deliver: () => resuming.connection.sendEncoded(type, bodyJson) });
      return true;
    }
    const dropped = this.dropped.get(fingerprint);
    if (dropped === undefined) return false;
    if (dropped.pending !== undefined) dropped.pending.push([type, bodyJson]);
    else void this.redirectAll(fingerprint, [[type, bodyJson]]);
    return true;
  }

  /**
   * Appends one message to the buffers of those of `fingerprints` that are suspended; resolves with
   * them. Only native peers are ever suspended, so dialect identities cost no store call, nor does
   * anything with resume off.
   */
  async bufferFor(fingerprints: readonly string[], type: string, bodyJson: string): Promise<ReadonlySet<string>> {
    if (!this.enabled) return NONE;
    const native = fingerprints.filter((fingerprint) => identityKind(fingerprint) === "");
    if (native.length === 0) return NONE;
    const buffered = await this.ctx.store.bufferMessage(native, bufferedMessage(type, bodyJson), this.ctx.bufferSize);
    return buffered.length === 0 ? NONE : new Set(buffered);
  }

  /**
   * A signal or relay whose target the store resolved as suspended: buffered; if the target
   * resumed (or left) before the buffer was written, delivered to where it is now, if anywhere.
   */
  async deliverOrBuffer(target: PeerRecord, type: string, body: Body, bodyJson: string): Promise<void> {
    if ((await this.bufferFor([target.fingerprint], type, bodyJson)).size > 0) return;
    const now = await this.ctx.store.resolvePeer(target.fingerprint);
    if (now !== undefined && now.suspended !== true) this.ctx.delivery.toPeer(now, type, body, bodyJson);
  }

  /** Starts the periodic sweep (a no-op with resume off). Safe to call twice. */
  start(): void {
    if (!this.enabled || this.cancelTick !== undefined || this.stopped) return;
    const period = Math.min(Math.max(this.ctx.graceMs / 2, MIN_SWEEP_MS), MAX_SWEEP_MS);
    const tick = (): void => {
      void this.sweepSoon();
      if (!this.stopped) this.cancelTick = this.ctx.clock.setTimer(tick, period);
    };
    this.cancelTick = this.ctx.clock.setTimer(tick, period);
  }

  /** Stops sweeping for good (the process is shutting down: the others, or its next incarnation, sweep). */
  stop(): void {
    this.stopped = true;
    this.cancelTick?.();
    this.cancelTick = undefined;
  }

  /**
   * Departs every peer whose grace ended, wherever it was suspended: the store removes each once,
   * for whichever process asks first, and that process tells its namespaces and rooms everywhere.
   * One sweep at a time; one asked for meanwhile runs after it. Resolves when the sweeps are done.
   */
  sweepSoon(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.sweeping !== undefined) {
      this.sweepAgain = true;
      return this.sweeping;
    }
    this.sweeping = this.sweep().finally(() => (this.sweeping = undefined));
    return this.sweeping;
  }

  private async sweep(): Promise<void> {
    const { store, delivery, clock, logger } = this.ctx;
    do {
      this.sweepAgain = false;
      try {
        const departures = await store.expireSuspended(clock.now());
        if (departures.length === 0) continue;
        logger.info({ peers: departures.length }, "suspended peers departed: their grace ran out");
        announceRemoved(delivery, departures, true);
      } catch (error) {
        logger.warn({ err: error }, "could not sweep ended suspensions");
        return;
      }
    } while (this.sweepAgain && !this.stopped);
  }

  /** Puts what reached this process for a peer that dropped here where the peer is now, in order. */
  private async redirectAll(fingerprint: string, messages: readonly [string, string][]): Promise<void> {
    for (const [type, bodyJson] of messages) {
      try {
        await this.deliverOrBuffer({ fingerprint, alias: "", connectionId: "", nodeId: "" }, type, JSON.parse(bodyJson) as Body, bodyJson);
      } catch (error) {
        this.ctx.logger.warn({ err: error, fingerprint }, "could not buffer a message for a suspended peer");
      }
    }
  }
}

const NONE: ReadonlySet<string> = new Set();

/** A buffered message as the store keeps it: the type, a tab, the serialized body (a type never holds a tab). */
export const bufferedMessage = (type: string, bodyJson: string): string => `${type}\t${bodyJson}`;

/** Splits a buffered message back into its type and serialized body. */
export function parseBufferedMessage(message: string): [type: string, bodyJson: string] {
  const tab = message.indexOf("\t");
  return [message.slice(0, tab), message.slice(tab + 1)];
}
