import type { Config } from "../config/load.ts";
import type { Delivery } from "../delivery/delivery.ts";
import type { BudgetStore } from "../backends/budget-store.ts";
import type { PeerChannels } from "../backends/peer-channels.ts";
import { MessageBudgets } from "../limits/message-budgets.ts";
import type { RegistrationLimits } from "../backends/registration-limiter.ts";
import { ConnectionLog, type ConnectionEnd } from "../observability/connection-log.ts";
import type { Logger } from "../observability/logger.ts";
import { noMetrics, type Metrics } from "../observability/metrics.ts";
import { isRequestType, type DecodedRequest } from "../protocol/decoder.ts";
import { CloseCode, ErrorCode, ProtocolError, badRequest } from "../protocol/errors.ts";
import { REQUEST_VALIDATORS, type ClientRequest, type RequestOf, type RequestType } from "../protocol/requests.ts";
import { errorBody, type ServerBody, type ServerMessage } from "../protocol/server-messages.ts";
import type { Departure, StateStore } from "../backends/state-store.ts";
import type { AccessClaims, AccessTokenVerifier } from "../trust/access-tokens.ts";
import { Access } from "./access.ts";
import type { Connection } from "./connection.ts";
import { systemClock, type Clock, type CoreContext, type Handler, type Reply } from "./context.ts";
import { Challenges } from "./challenges.ts";
import { announceRemoved } from "./departures.ts";
import { iceServersFor } from "./ice-servers.ts";
import { JoinGate } from "./join-gate.ts";
import { Matchmaking } from "./matchmaking.ts";
import { goesStraightToChannel, Messaging } from "./messaging.ts";
import { Moderation, NO_BANS, type BanCheck } from "./moderation.ts";
import { peerLimitsOf } from "./peer-limits.ts";
import { Recovery } from "./recovery.ts";
import { Registration } from "./registration.ts";
import { Resumption } from "./resumption.ts";
import { Scopes } from "./scopes.ts";
import { Session, type Ack } from "./session.ts";
import { Sessions } from "./sessions.ts";

export interface HubDeps {
  config: Config;
  store: StateStore;
  delivery: Delivery;
  /** Where a key's message budget waits for its next connection, on any process (see MessageBudgets). */
  budgetStore: BudgetStore;
  /** Registrations per client address whatever the key and per public key, counted for the whole deployment. */
  registrationLimits: RegistrationLimits;
  logger: Logger;
  /** This process's id in the deployment; recorded with each peer it registers. */
  nodeId: string;
  /** Default: the system clock. */
  clock?: Clock;
  /** What is counted and timed for the metrics. Default: noMetrics (nothing). */
  metrics?: Metrics;
  /** The deployment's bans as this process knows them. Default: none. */
  bans?: BanCheck;
  /** Verifies the access tokens of `refresh` (access tokens on). Default: none (`refresh` gets 400). */
  accessTokens?: AccessTokenVerifier;
  /** A channel per peer between nodes (nodes on Redis): targeted messages go straight to the target's node. */
  peerChannels?: PeerChannels;
}

/** One handler per request type: a type without one does not compile. */
type Handlers = { readonly [T in RequestType]: Handler<RequestOf<T>> };

/**
 * The transport-free core's entry point. Transports hand it connections and decoded requests
 * (protocol/decoder.ts); it queues each connection's requests, handles them strictly in order by
 * dispatching them to the handler of their type (core/registration.ts, scopes.ts, messaging.ts,
 * matchmaking.ts), and sends the replies. It never imports a transport.
 */
export class Hub {
  /** Holds what reaches a joining connection until its peer_list is out (see JoinGate). */
  readonly joinGate: JoinGate;
  /** The lines about connections; the transports add theirs (see ConnectionLog). */
  readonly log: ConnectionLog;
  /** The operator's disconnects and the closing of banned connections (the admin API). */
  readonly moderation: Moderation;
  private readonly registry: Sessions;
  /** Every connection's message budget: taken per message here, kept across reconnects in the budget store. */
  private readonly budgets: MessageBudgets;
  private readonly registration: Registration;
  private readonly recovery: Recovery;
  /** Suspended peers, their buffers and their grace (session resume). */
  private readonly resumption: Resumption;
  /** What each connection's access token grants, and its expiry. */
  private readonly access: Access;
  private readonly handlers: Handlers;
  private readonly clock: Clock;
  private readonly metrics: Metrics;
  private accepting = true;

  constructor(private readonly deps: HubDeps) {
    const clock = deps.clock ?? systemClock;
    this.clock = clock;
    const metrics = (this.metrics = deps.metrics ?? noMetrics);
    this.log = new ConnectionLog(deps.logger, clock.now);
    this.registry = new Sessions(deps.peerChannels);
    this.budgets = new MessageBudgets({
      perSec: deps.config.rateLimitPerSec,
      burst: deps.config.rateLimitBurst,
      store: deps.budgetStore,
      logger: deps.logger,
    });
    this.joinGate = new JoinGate((connectionId) => this.registry.withConnectionId(connectionId), deps.delivery);
    this.access = new Access({ clock, verifier: deps.accessTokens, closeLocal: (...args) => this.closeLocal(...args) });
    const context: CoreContext = {
      store: deps.store,
      delivery: deps.delivery,
      sessions: this.registry,
      joins: this.joinGate,
      budgets: this.budgets,
      registrationLimits: deps.registrationLimits,
      access: this.access,
      logger: deps.logger,
      log: this.log,
      clock,
      nodeId: deps.nodeId,
      metrics,
    };
    const recovery = new Recovery(context);
    const resumption = new Resumption({
      ...context,
      graceMs: deps.config.resumeGraceMs,
      bufferSize: deps.config.resumeBuffer,
      // With Redis the state outlives this process: its peers resume on another node.
      suspendOnShutdown: deps.config.brokerType === "redis",
    });
    this.resumption = resumption;
    const bans = deps.bans ?? NO_BANS;
    const ice = { turnSecret: deps.config.turnSecret, turnUrls: deps.config.turnUrls, turnTtlMs: deps.config.turnTtlMs, stunUrls: deps.config.stunUrls };
    const challenges = new Challenges(deps.config.keyProof, clock);
    const registration = new Registration({
      ...context,
      recovery,
      challenges,
      resumption,
      closeLocal: (...args) => this.closeLocal(...args),
      iceServers: (fingerprint) => iceServersFor(ice, fingerprint, clock.now()),
      banned: (fingerprint) => bans.fingerprintBanned(fingerprint),
    });
    this.moderation = new Moderation({ ...context, bans, closeLocal: (...args) => this.closeLocal(...args) });
    this.recovery = recovery;
    this.registration = registration;
    const limits = peerLimitsOf(deps.config);
    const scopes = new Scopes({ ...context, limits, resumption });
    const messaging = new Messaging({
      ...context,
      resumption,
      channels: deps.peerChannels,
      refuseLate: (session, error, ref) => this.refuseLate(session, error, ref),
    });
    deps.peerChannels?.onFrame((peer, frame) => messaging.arrived(peer, frame));
    const matchmaking = new Matchmaking({ ...context, limits, resumption });
    this.handlers = {
      challenge: (session) => challenges.issue(session),
      register: (session, request) => registration.register(session, request.payload),
      metadata: (session, request) => registration.updateMeta(session, request.payload),
      join: (session, request) => scopes.join(session, request.payload),
      leave: (session, request) => scopes.leave(session, request.payload),
      discover: (session, request) => scopes.discover(session, request.payload),
      create_room: (session, request) => scopes.createRoom(session, request.payload),
      join_room: (session, request) => scopes.joinRoom(session, request.payload),
      room_info: (session, request) => scopes.roomInfo(session, request.payload),
      kick: (session, request) => scopes.kick(session, request.payload),
      signal: (session, request, receivedAt) => messaging.targeted(session, request, receivedAt),
      relay: (session, request, receivedAt) => messaging.targeted(session, request, receivedAt),
      broadcast: (session, request) => messaging.broadcast(session, request.payload),
      match: (session, request) => matchmaking.match(session, request.payload),
      match_cancel: (session, request) => matchmaking.cancel(session, request.payload),
      refresh: (session, request) => this.access.refresh(session, request.payload),
      ping: () => ({ type: "pong", body: { ts: clock.now() } }),
    };
  }

  /**
   * Admits a new connection, or refuses it (the machine was full when it arrived, see
   * limits/admission.ts, or the server is draining) by sending error 503 and closing with 1013.
   * An admitted connection that does not register within pong_wait is closed with 1008.
   * `access`: what its access token grants (access tokens on); it is closed at the token's expiry
   * (401, 4003) unless a `refresh` comes first. Returns the session to feed requests into.
   */
  open(connection: Connection, overCapacity: boolean, access?: AccessClaims): Session | undefined {
    if (!this.accepting || overCapacity) {
      const reason = this.accepting ? "server full" : "server shutting down";
      this.log.refusedConnection(connection, CloseCode.TryAgainLater, reason);
      closeWithNotice(connection, ErrorCode.Unavailable, CloseCode.TryAgainLater, reason);
      return undefined;
    }
    const session = new Session(connection);
    session.openedAt = this.clock.now();
    this.log.opened(connection);
    session.budget = this.budgets.fresh();
    this.registry.add(session);
    session.cancelRegisterTimeout = this.clock.setTimer(() => {
      if (session.fingerprint === undefined) closeWithNotice(connection, ErrorCode.BadRequest, CloseCode.PolicyViolation, "register timeout");
    }, this.deps.config.pongWaitMs);
    this.access.open(session, access);
    return session;
  }

  /**
   * Queues a decoded request (or the decoder's error for it, answered in its turn); requests of one
   * session are handled strictly in order, and at most rate_limit_burst wait (429 beyond).
   */
  receive(session: Session, request: DecodedRequest, ack?: Ack): void {
    if (session.closed) return;
    const { metrics } = this;
    metrics.requestReceived(refOf(request));
    const receivedAt = metrics.now();
    if (session.queue.length >= this.deps.config.rateLimitBurst) {
      metrics.rateLimited();
      const logged = loggedRef(request);
      this.log.rateLimited(session.connection, logged);
      this.log.refusedRequest(session.connection, ErrorCode.TooMany, logged, "rate limited");
      this.respond(session, { type: "error", body: errorBody(ErrorCode.TooMany, "rate limited", refOf(request)) }, ack);
      metrics.requestHandled(refOf(request), receivedAt);
      return;
    }
    session.queue.push({ request, ack, receivedAt });
    if (!session.draining) void this.drain(session);
  }

  /** Answers a message the transport refused at its edge (bad JSON, binary frame, bad shape): no `ref`, not queued. */
  reject(session: Session, code: ErrorCode, message: string, ack?: Ack, ref?: string): void {
    // Queued like any request: its answer must not overtake replies to earlier requests still
    // waiting for the store, and a flood of bad frames spends the budget like any other.
    this.receive(session, new ProtocolError(code, message, ref), ack);
  }

  /**
   * Cleans up after a connection closed for any reason; safe to call twice (both calls share one
   * cleanup). `end`: how it ended as the transport saw it, for the log line, which the first call writes.
   */
  close(session: Session, end?: ConnectionEnd): Promise<void> {
    session.closing ??= this.cleanUp(session, end);
    return session.closing;
  }

  private async cleanUp(session: Session, end: ConnectionEnd | undefined): Promise<void> {
    const { connection } = session;
    if (end?.code === CloseCode.SlowConsumer) this.log.slowConsumer(connection, session.fingerprint);
    this.log.closed(connection, session.fingerprint, end, this.clock.now() - session.openedAt);
    session.closed = true;
    session.queue.length = 0;
    session.cancelRegisterTimeout?.();
    session.cancelRegisterTimeout = undefined;
    this.access.close(session);
    this.registry.remove(session);
    this.joinGate.forget(session);
    await this.registration.release(session, end);
  }

  /** The state backend is reachable again; see Recovery.storeRecovered. */
  storeRecovered(stateLost: boolean, settleMs = 0): Promise<void> {
    return this.recovery.storeRecovered(stateLost, settleMs);
  }

  /**
   * Writes an already serialized message to a peer connected here (from another worker). One for a
   * peer whose connection here just dropped, or whose resume is at the store here, is kept for it
   * (Resumption.straggler); otherwise it is dropped. True when it was handed to the peer's connection.
   */
  deliverEncoded(fingerprint: string, type: string, bodyJson: string): boolean {
    const session = this.registry.withFingerprint(fingerprint);
    if (session === undefined) {
      this.resumption.straggler(fingerprint, type, bodyJson);
      return false;
    }
    session.connection.sendEncoded(type, bodyJson);
    return true;
  }

  /**
   * Closes a connection of this process with a notice, if it is here; the state store has already
   * forgotten its peer, so its cleanup announces nothing. Returns false if it is not here.
   */
  closeLocal(connectionId: string, code: ErrorCode, closeCode: CloseCode, message: string): boolean {
    const session = this.registry.withConnectionId(connectionId);
    if (session === undefined) return false;
    closeWithNotice(session.connection, code, closeCode, message);
    // Closed for cause: the peer departs, it is never suspended.
    void this.close(session, { code: closeCode, reason: message, byServer: true });
    return true;
  }

  /** Tells members about peers that were removed for a dead process or node; see departures.ts announceRemoved. */
  announceRemoved(departures: readonly Departure[], everywhere: boolean): void {
    announceRemoved(this.deps.delivery, departures, everywhere);
  }

  /**
   * Starts what the hub does on its own time once the server runs: looking for suspended peers
   * whose grace ended, whichever process suspended them (see Resumption). stopAccepting stops it.
   */
  start(): void {
    this.resumption.start();
  }

  /** Stops admitting connections (for shutdown); `/health` turns 503. This process sweeps no more suspensions. */
  stopAccepting(): void {
    this.accepting = false;
    this.resumption.stop();
  }

  /** False once stopAccepting was called. */
  get isAccepting(): boolean {
    return this.accepting;
  }

  /** Every open session, for shutdown and /stats. */
  sessions(): IterableIterator<Session> {
    return this.registry.all();
  }

  private async drain(session: Session): Promise<void> {
    session.draining = true;
    try {
      for (let next = session.queue.shift(); next !== undefined && !session.closed; next = session.queue.shift()) {
        const { request, ack, receivedAt } = next;
        session.acknowledged = ack !== undefined;
        if (!goesStraightToChannel(request, session.acknowledged)) {
          const settled = session.sendsSettled();
          if (settled !== undefined) await this.atMost(settled, SEND_OUTCOME_WAIT_MS);
          if (session.closed) break;
        }
        let reply: Reply;
        try {
          if (!this.budgets.take(session.budget)) {
            this.metrics.rateLimited();
            this.log.rateLimited(session.connection, loggedRef(request));
            throw new ProtocolError(ErrorCode.TooMany, "rate limited");
          }
          const result = this.dispatch(session, request, receivedAt);
          reply = result instanceof Promise ? await result : result;
        } catch (error) {
          reply = { type: "error", body: this.errorBodyFor(session, error, request) };
        }
        if (session.closed) break;
        if (reply !== undefined) this.respond(session, reply, ack);
        else if (ack !== undefined) {
          this.metrics.messageSent("ok");
          ack(okReply(refOf(request)));
        }
        this.metrics.requestHandled(refOf(request), receivedAt, session.handedOffAt);
        session.handedOffAt = 0;
        const after = session.afterReply;
        session.afterReply = undefined;
        after?.();
      }
    } finally {
      session.draining = false;
    }
  }

  /**
   * Hands a request to the handler of its type. The connection's phase is checked before its
   * fields: register first, and only once, also when the request itself was refused.
   */
  private dispatch(session: Session, request: DecodedRequest, receivedAt: number): Reply | Promise<Reply> {
    if (request instanceof ProtocolError) {
      if (request.ref !== undefined && isRequestType(request.ref)) checkPhase(session, request.ref);
      throw request;
    }
    checkPhase(session, request.type);
    // The table pairs each type with its handler; indexing it with the union loses that pairing.
    return (this.handlers[request.type] as Handler<ClientRequest>)(session, request, receivedAt);
  }

  /** Sends a direct reply; the transports count what they send, the hub what goes to an acknowledgement. */
  private respond(session: Session, reply: ServerMessage, ack: Ack | undefined): void {
    if (reply.type === "error") this.metrics.errorReplied(reply.body.payload.code);
    if (ack !== undefined) {
      this.metrics.messageSent(reply.type);
      ack({ type: reply.type, ...reply.body });
    } else session.connection.send(reply.type, reply.body);
  }

  /** Resolves when `promise` does, or after `ms` on the hub's clock, whichever comes first. */
  private atMost(promise: Promise<void>, ms: number): Promise<void> {
    let cancel: (() => void) | undefined;
    const timeout = new Promise<void>((resolve) => (cancel = this.clock.setTimer(resolve, ms)));
    return Promise.race([promise, timeout]).finally(() => cancel?.());
  }

  /** Sends the error of a request whose turn is over (decided on another node), unless the connection closed. */
  private refuseLate(session: Session, error: ProtocolError, ref: string): void {
    if (session.closed) return;
    if (error.cause !== undefined) this.deps.logger.error({ err: error.cause, conn: session.connection.id, ref }, "request failed");
    this.log.refusedRequest(session.connection, error.code, isRequestType(ref) ? ref : undefined, error.message);
    this.metrics.errorReplied(error.code);
    session.connection.send("error", errorBody(error.code, error.message, ref));
  }

  private errorBodyFor(session: Session, error: unknown, request: DecodedRequest): ServerBody<"error"> {
    const ref = refOf(request);
    const { connection } = session;
    if (error instanceof ProtocolError) {
      if (error.cause !== undefined) this.deps.logger.error({ err: error.cause, conn: connection.id, ref: loggedRef(request) }, "request failed");
      this.log.refusedRequest(connection, error.code, loggedRef(request), error.message);
      return errorBody(error.code, error.message, ref);
    }
    this.deps.logger.error({ err: error, conn: connection.id, ref: loggedRef(request) }, "handler failed");
    return errorBody(ErrorCode.Internal, "internal error", ref);
  }
}

const okOf = (ref: string | undefined): Record<string, unknown> => Object.freeze({ type: "ok", payload: Object.freeze({ ref }) });
/** The `ok` acknowledgement of each request type, built once: one goes out per acknowledged signal. */
const OK_REPLIES: ReadonlyMap<string, Record<string, unknown>> = new Map([...REQUEST_VALIDATORS.keys()].map((type) => [type, okOf(type)]));
const okReply = (ref: string | undefined): Record<string, unknown> => (ref === undefined ? undefined : OK_REPLIES.get(ref)) ?? okOf(ref);

/**
 * How long a request waits for the outcome of its connection's earlier signals to other nodes. A
 * send in flight when the broker's connection broke is sent again once it is back, and the
 * connection's other requests do not wait for that.
 */
const SEND_OUTCOME_WAIT_MS = 1_000;

/** The type a request, or the decoder's error for it, answers to: the `ref` of its error reply. */
const refOf = (request: DecodedRequest): string | undefined => (request instanceof ProtocolError ? request.ref : request.type);

/** A request's `ref` for the log: only a type the protocol knows, never a string a client made up. */
const loggedRef = (request: DecodedRequest): string | undefined => {
  const ref = refOf(request);
  return ref !== undefined && isRequestType(ref) ? ref : undefined;
};

/** `register` comes first, and only once; `challenge`, which prepares it, only before it. */
function checkPhase(session: Session, type: string): void {
  // A newer access token is welcome whenever it comes.
  if (type === "refresh") return;
  const registering = type === "register" || type === "challenge";
  if (session.fingerprint === undefined) {
    if (!registering) throw badRequest("register first");
  } else if (registering) throw badRequest("already registered");
}

/**
 * Closes a connection the server decided to end, telling the client why first: an `error` whose
 * payload carries the close code, so Socket.IO clients (which see no WebSocket close code) learn it too.
 */
export function closeWithNotice(connection: Connection, code: ErrorCode, closeCode: CloseCode, message: string): void {
  connection.send("error", { payload: { code, message, close_code: closeCode } } satisfies ServerBody<"error">);
  connection.close(closeCode, message);
}
