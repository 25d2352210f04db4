import type { IncomingMessage } from "node:http";
import type { Server as EngineServer, Socket as EngineSocket } from "engine.io";

/**
 * How long an Engine.IO session admitted over capacity may wait for its Socket.IO connect, which
 * gets the protocol's refusal (error 503, close 1013). A client sends it right after the handshake;
 * one that does not is holding a session for nothing.
 */
const REFUSAL_GRACE_MS = 1_000;
/** Sessions waiting for that refusal at once; past this, new sessions are refused at the handshake. */
const MAX_PENDING_REFUSALS = 64;

/**
 * Admission control: `max_peers` counts every connection of the machine, raw and Socket.IO,
 * registered or not, long-polling sessions included (an Engine.IO session is a connection from its
 * handshake on, whether or not it ever connects to Socket.IO).
 *
 * The verdict is taken when the connection arrives, before it counts: at the /ws upgrade, and in
 * Engine.IO's allowRequest for a new session. A refused /ws peer or Socket.IO client is still
 * answered the protocol's way (error 503, close 1013), so a refused session is let through the
 * handshake, remembered, and refused at its Socket.IO connect (or closed after a grace period if
 * that never comes). Only when too many refused sessions are pending at once does the handshake
 * itself fail ("server full"), so that refusals cannot pile up either.
 *
 * Everything that is refused before the connection exists, without a word of the protocol (bans,
 * origins, tokens, the per-address limits), is the connection gate's (limits/connection-gate.ts),
 * which comes first.
 */
export class Admission {
  private readonly refusedSessions = new WeakSet<IncomingMessage>();
  private pendingRefusals = 0;

  /**
   * @param full whether the machine already holds max_peers connections, for this request's connection
   * @param accepting false while shutting down: everything is refused
   */
  constructor(
    private readonly full: (request: IncomingMessage) => boolean,
    private readonly accepting: () => boolean,
  ) {}

  /** Verdict for a new raw /ws connection, taken at its upgrade. */
  refuses(request: IncomingMessage): boolean {
    return !this.accepting() || this.full(request);
  }

  /** Engine.IO's allowRequest: runs once per new session, before the session exists. */
  admitSession(request: IncomingMessage, callback: (error: string | null | undefined, success: boolean) => void): void {
    if (!this.refuses(request)) {
      callback(null, true);
      return;
    }
    if (this.pendingRefusals >= MAX_PENDING_REFUSALS) {
      callback("server full", false);
      return;
    }
    this.refusedSessions.add(request);
    callback(null, true);
  }

  /** Verdict for a Socket.IO connection, from its Engine.IO handshake request. */
  refusesSession(request: IncomingMessage): boolean {
    return this.refusedSessions.has(request);
  }

  /** Closes refused sessions that never connect to Socket.IO within the grace period. */
  watchSessions(engine: EngineServer): void {
    engine.on("connection", (session: EngineSocket) => {
      if (!this.refusedSessions.has(session.request)) return;
      this.pendingRefusals++;
      // Discarded: a polling session would otherwise linger until its next poll.
      const timer = setTimeout(() => session.close(true), REFUSAL_GRACE_MS);
      timer.unref();
      session.once("close", () => {
        this.pendingRefusals--;
        clearTimeout(timer);
      });
    });
  }
}
