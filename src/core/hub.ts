import { randomBytes, randomUUID } from "node:crypto";
import type { Config } from "../config/load.ts";
import type { BudgetStore } from "../limits/budget-store.ts";
import { MessageBudgets } from "../limits/message-budgets.ts";
import type { RegistrationLimiter } from "../limits/rate-limiter.ts";
import type { Logger } from "../observability/logger.ts";
import type { Body, Outgoing } from "../protocol/envelope.ts";
import { CloseCode, ErrorCode, ProtocolError, badRequest } from "../protocol/errors.ts";
import * as requests from "../protocol/requests.ts";
import type { Departure, JoinResult, MemberInfo, StateStore } from "../state/store.ts";
import { aliasCandidates, fingerprintOf } from "./alias.ts";
import { SCOPE_PREFIX, peerRoom, scopeRoom, type Delivery } from "../delivery/delivery.ts";
import type { Connection } from "./connection.ts";
import { JoinGate } from "./join-gate.ts";
import { Session, type Ack, type Incoming, type Membership } from "./session.ts";

export interface HubDeps {
  config: Config;
  store: StateStore;
  delivery: Delivery;
  /** Where a key's message budget waits for its next connection, on any process (see MessageBudgets). */
  budgetStore: BudgetStore;
  /** Registrations per public key, counted for the whole deployment. */
  registrationLimiter: RegistrationLimiter;
  logger: Logger;
  /** This process's id in the deployment; recorded with each peer it registers. */
  nodeId: string;
}

type Handler = (session: Session, message: Incoming) => Outgoing | undefined | Promise<Outgoing | undefined>;

const { LIMITS } = requests;

/**
 * The transport-free core. Transports hand it connections and decoded messages; it validates,
 * consults the state store, replies and delivers through the adapter. It never imports a transport.
 */
export class Hub {
  private readonly sessionsById = new Map<string, Session>();
  /** Holds what reaches a joining connection until its peer_list is out (see JoinGate). */
  readonly joinGate = new JoinGate((connectionId) => this.sessionsById.get(connectionId));
  private readonly sessionsByFingerprint = new Map<string, Session>();
  private readonly sessionsByAlias = new Map<string, Session>();
  private readonly handlers: Record<string, Handler>;
  private accepting = true;
  /**
   * Disconnects whose cleanup failed while the backend was down, by connection id: the peer's
   * fingerprint and the namespaces and rooms it was in, as this node knew them.
   */
  private readonly failedCleanups = new Map<string, Departure>();

  /** Every connection's message budget: taken per message here, kept across reconnects in the budget store. */
  private readonly budgets: MessageBudgets;

  constructor(private readonly deps: HubDeps) {
    this.budgets = new MessageBudgets({
      perSec: deps.config.rateLimitPerSec,
      burst: deps.config.rateLimitBurst,
      store: deps.budgetStore,
      logger: deps.logger,
    });
    this.handlers = {
      register: (s, m) => this.register(s, m),
      join: (s, m) => this.join(s, m),
      leave: (s, m) => this.leave(s, m),
      signal: (s, m) => this.targeted(s, m),
      relay: (s, m) => this.targeted(s, m),
      broadcast: (s, m) => this.broadcast(s, m),
      discover: (s, m) => this.discover(s, m),
      match: (s, m) => this.match(s, m),
      match_cancel: (s, m) => this.matchCancel(s, m),
      create_room: (s, m) => this.createRoom(s, m),
      join_room: (s, m) => this.joinRoom(s, m),
      room_info: (s, m) => this.roomInfo(s, m),
      kick: (s, m) => this.kick(s, m),
      metadata: (s, m) => this.metadata(s, m),
      ping: () => ({ type: "pong", body: { ts: Date.now() } }),
    };
  }

  /** Connections open on this process. */
  get connectionCount(): number {
    return this.sessionsById.size;
  }

  /**
   * Admits a new connection, or refuses it (the machine was full when it arrived, see
   * limits/admission.ts, or the server is draining) by sending error 503 and closing with 1013.
   * Returns the session to feed messages into.
   */
  open(connection: Connection, overCapacity: boolean): Session | undefined {
    if (!this.accepting || overCapacity) {
      closeWithNotice(connection, ErrorCode.Unavailable, CloseCode.TryAgainLater, this.accepting ? "server full" : "server shutting down");
      return undefined;
    }
    const session = new Session(connection);
    session.budget = this.budgets.fresh();
    this.sessionsById.set(connection.id, session);
    session.registerTimer = setTimeout(() => {
      if (session.fingerprint === undefined) closeWithNotice(connection, ErrorCode.BadRequest, CloseCode.PolicyViolation, "register timeout");
    }, this.deps.config.pongWaitMs);
    session.registerTimer.unref();
    return session;
  }

  /** Queues a decoded message; requests of one session are handled strictly in order. */
  receive(session: Session, message: Incoming, ack?: Ack): void {
    if (session.closed) return;
    if (session.queue.length >= this.deps.config.rateLimitBurst) {
      this.respond(session, { type: "error", body: errorBody(ErrorCode.TooMany, "rate limited", message.type) }, ack);
      return;
    }
    session.queue.push({ message, ack });
    if (!session.draining) void this.drain(session);
  }

  /** Reports a message the transport could not decode (bad JSON, binary frame, bad shape). */
  reject(session: Session, code: ErrorCode, message: string, ack?: Ack): void {
    this.respond(session, { type: "error", body: errorBody(code, message) }, ack);
  }

  /** Cleans up after a connection closed for any reason; safe to call twice (both calls share one cleanup). */
  close(session: Session): Promise<void> {
    session.closing ??= this.cleanUp(session);
    return session.closing;
  }

  private async cleanUp(session: Session): Promise<void> {
    session.closed = true;
    session.queue.length = 0;
    clearTimeout(session.registerTimer);
    const connection = session.connection;
    this.sessionsById.delete(connection.id);
    this.joinGate.forget(session);
    const fingerprint = session.fingerprint;
    if (fingerprint === undefined) return;
    if (this.sessionsByFingerprint.get(fingerprint) === session) this.sessionsByFingerprint.delete(fingerprint);
    if (session.alias !== undefined && this.sessionsByAlias.get(session.alias) === session) this.sessionsByAlias.delete(session.alias);
    const scopes = [...session.memberships.keys()];
    // Saved before the peer is unregistered: a registration that no longer finds it finds its budget.
    const budget = session.budget;
    session.budget = undefined;
    if (budget !== undefined) await this.budgets.release(fingerprint, connection.id, budget);
    await this.unregister(fingerprint, connection.id, scopes);
  }

  private async unregister(fingerprint: string, connectionId: string, scopes: string[]): Promise<void> {
    try {
      const departure = await this.deps.store.unregisterPeer(fingerprint, connectionId);
      if (departure !== undefined) this.announceDeparture(departure, connectionId);
    } catch (error) {
      // The state backend is down: retry once it is back (see storeRecovered), or the peer would stay listed.
      this.failedCleanups.set(connectionId, { fingerprint, scopes });
      this.deps.logger.warn({ err: error, fingerprint }, "cleanup after disconnect deferred");
    }
  }

  /**
   * The state backend is reachable again. Cleanups that failed during the outage are retried; if
   * the backend lost its state, every peer connected here is registered again with its alias,
   * meta, namespaces and rooms (a room that no longer exists is created again, owned by the first
   * member to come back). Waiting match tickets are not restored: they were lost with the state.
   * Peers that disconnected during the outage are then announced (peer_left) from what this node
   * knew of their namespaces and rooms, since the state that listed them is gone.
   *
   * The failed cleanups are handled `settleMs` later: their peer_left goes to other processes
   * through a backend that just came back, whose other clients (their adapter subscriptions)
   * reconnect on their own schedule; announced earlier, it would be lost for them.
   */
  async storeRecovered(stateLost: boolean, settleMs = 0): Promise<void> {
    const cleanups = [...this.failedCleanups];
    this.failedCleanups.clear();
    if (stateLost) {
      for (const session of [...this.sessionsByFingerprint.values()]) {
        if (!session.closed) await this.reRegister(session);
      }
    }
    if (cleanups.length === 0) return;
    if (settleMs > 0) await new Promise((resolve) => setTimeout(resolve, settleMs));
    for (const [connectionId, departure] of cleanups) {
      if (!stateLost) {
        await this.unregister(departure.fingerprint, connectionId, departure.scopes);
        continue;
      }
      try {
        // Unless the peer is back already (it reconnected since), its members still list it.
        if ((await this.deps.store.resolvePeer(departure.fingerprint)) === undefined) this.announceDeparture(departure, connectionId);
      } catch (error) {
        this.deps.logger.warn({ err: error, fingerprint: departure.fingerprint }, "could not announce a peer that left during the outage");
      }
    }
  }

  private async reRegister(session: Session): Promise<void> {
    const fingerprint = session.fingerprint as string;
    const connection = session.connection;
    const base = { fingerprint, connectionId: connection.id, nodeId: this.deps.nodeId, aliasCandidates: aliasCandidates(fingerprint), meta: session.meta };
    try {
      let registration;
      try {
        registration = await this.deps.store.registerPeer({ ...base, alias: session.alias });
      } catch (error) {
        if (!(error instanceof ProtocolError) || error.code !== ErrorCode.Conflict) throw error;
        // Someone else took the alias while the state was gone: take a generated one and say so.
        registration = await this.deps.store.registerPeer({ ...base, alias: undefined });
      }
      if (registration.alias !== session.alias) {
        if (session.alias !== undefined && this.sessionsByAlias.get(session.alias) === session) this.sessionsByAlias.delete(session.alias);
        session.alias = registration.alias;
        this.sessionsByAlias.set(registration.alias, session);
        connection.send("registered", { from: fingerprint, payload: { fingerprint, alias: registration.alias } });
      }
    } catch (error) {
      this.deps.logger.error({ err: error, fingerprint }, "could not restore a peer after the state was lost");
      return;
    }
    // Each namespace and room on its own: one that cannot be restored must not cost the others.
    for (const room of [...connection.rooms]) {
      if (!room.startsWith(SCOPE_PREFIX)) continue;
      const name = room.slice(SCOPE_PREFIX.length);
      const membership = session.memberships.get(name);
      // Its peer_list predates the loss: whoever joined since must reach it, whatever their new seq.
      if (membership !== undefined) membership.joinSeq = undefined;
      try {
        const appType = membership?.appType;
        if (appType !== undefined) await this.deps.store.joinNamespace(name, fingerprint, { appType, meta: undefined, listLimit: 0 });
        else await this.restoreRoomMembership(name, fingerprint, membership?.roomSize ?? LIMITS.roomDefaultSize);
      } catch (error) {
        this.deps.logger.error({ err: error, fingerprint, scope: name }, "could not restore a namespace or room after the state was lost");
      }
    }
  }

  /**
   * Joins a room again, creating it if the state lost it. Members on other processes restore the
   * same room at the same moment: whoever loses the create race (409) joins the winner's room.
   */
  private async restoreRoomMembership(roomId: string, fingerprint: string, maxSize: number): Promise<void> {
    try {
      await this.deps.store.joinRoom(roomId, fingerprint, 0);
      return;
    } catch (error) {
      if (!(error instanceof ProtocolError) || error.code !== ErrorCode.NotFound) throw error;
    }
    try {
      await this.deps.store.createRoom(roomId, fingerprint, maxSize);
    } catch (error) {
      if (!(error instanceof ProtocolError) || error.code !== ErrorCode.Conflict) throw error;
      await this.deps.store.joinRoom(roomId, fingerprint, 0);
    }
  }

  /** Writes an already serialized message to a peer connected here (from another worker); dropped if it left. */
  deliverEncoded(fingerprint: string, type: string, bodyJson: string): void {
    this.sessionsByFingerprint.get(fingerprint)?.connection.sendEncoded(type, bodyJson);
  }

  /**
   * Closes a connection of this process with a notice, if it is here; the state store has already
   * forgotten its peer, so its cleanup announces nothing. Returns false if it is not here.
   */
  closeLocal(connectionId: string, code: ErrorCode, closeCode: CloseCode, message: string): boolean {
    const session = this.sessionsById.get(connectionId);
    if (session === undefined) return false;
    closeWithNotice(session.connection, code, closeCode, message);
    void this.close(session);
    return true;
  }

  /**
   * Tells members about peers that were removed for a dead process or node. `everywhere`: this
   * process alone learned of it (it reaped the node through Redis), so it tells every node;
   * otherwise every process learned it (the cluster's replicated store) and tells its own.
   */
  announceRemoved(departures: readonly Departure[], everywhere: boolean): void {
    for (const departure of departures) {
      for (const name of departure.scopes) {
        const body = { from: departure.fingerprint, namespace: name };
        if (everywhere) void this.deps.delivery.emit(scopeRoom(name), "peer_left", body);
        else this.deps.delivery.emitLocal(scopeRoom(name), "peer_left", body);
      }
    }
  }

  /** Stops admitting connections (for shutdown); `/health` turns 503. */
  stopAccepting(): void {
    this.accepting = false;
  }

  get isAccepting(): boolean {
    return this.accepting;
  }

  /** Every open session, for shutdown. */
  sessions(): IterableIterator<Session> {
    return this.sessionsById.values();
  }

  private async drain(session: Session): Promise<void> {
    session.draining = true;
    try {
      for (let next = session.queue.shift(); next !== undefined && !session.closed; next = session.queue.shift()) {
        const { message, ack } = next;
        let reply: Outgoing | undefined;
        try {
          if (!this.budgets.take(session.budget)) {
            throw new ProtocolError(ErrorCode.TooMany, "rate limited");
          }
          const handler = Object.hasOwn(this.handlers, message.type) ? this.handlers[message.type] : undefined;
          if (handler === undefined) throw badRequest(`unknown message type "${message.type}"`);
          if (message.type !== "register" && session.fingerprint === undefined) throw badRequest("register first");
          const result = handler(session, message);
          reply = result instanceof Promise ? await result : result;
        } catch (error) {
          reply = { type: "error", body: this.errorBodyFor(error, message.type) };
        }
        if (session.closed) break;
        if (reply !== undefined) this.respond(session, reply, ack);
        else if (ack !== undefined) ack({ type: "ok", payload: { ref: message.type } });
        const after = session.afterReply;
        session.afterReply = undefined;
        after?.();
      }
    } finally {
      session.draining = false;
    }
  }

  private respond(session: Session, reply: Outgoing, ack: Ack | undefined): void {
    if (ack !== undefined) ack({ type: reply.type, ...reply.body });
    else session.connection.send(reply.type, reply.body);
  }

  private errorBodyFor(error: unknown, ref: string): Body {
    if (error instanceof ProtocolError) return errorBody(error.code, error.message, ref);
    this.deps.logger.error({ err: error, ref }, "handler failed");
    return errorBody(ErrorCode.Internal, "internal error", ref);
  }

  private fingerprintOf(session: Session): string {
    // Handlers other than register run only after drain() checked registration.
    return session.fingerprint as string;
  }

  private async register(session: Session, message: Incoming): Promise<Outgoing> {
    if (session.fingerprint !== undefined) throw badRequest("already registered");
    const request = requests.parseRegister(message.payload);
    const fingerprint = fingerprintOf(request.publicKey);
    const connection = session.connection;
    if (!(await this.deps.registrationLimiter.consume(fingerprint))) {
      throw new ProtocolError(ErrorCode.TooMany, "too many registrations for this key");
    }
    const registration = await this.deps.store.registerPeer({
      fingerprint,
      connectionId: connection.id,
      nodeId: this.deps.nodeId,
      alias: request.alias,
      // Only used when no alias is asked for: a taken alias is refused (409), never replaced.
      aliasCandidates: request.alias === undefined ? aliasCandidates(fingerprint) : [],
      meta: request.meta ?? {},
    });
    if (session.closed) {
      await this.deps.store.unregisterPeer(fingerprint, connection.id);
      throw new ProtocolError(ErrorCode.Unavailable, "connection closed during register");
    }
    const replaced = registration.replaced;
    // The key's message budget goes on (see MessageBudgets): a registered connection of this
    // process hands its own over before it is closed; otherwise the connection before saved it,
    // or saves it once told to close here.
    const here = replaced === undefined ? undefined : this.sessionsById.get(replaced.connectionId);
    const predecessor = here?.fingerprint === undefined ? undefined : here;
    if (predecessor !== undefined) session.budget = this.budgets.handOver(predecessor);
    if (replaced !== undefined) {
      const notice = "replaced by a newer connection with the same key";
      if (!this.closeLocal(replaced.connectionId, ErrorCode.Conflict, CloseCode.Replaced, notice)) {
        this.deps.delivery.closeElsewhere(replaced.connectionId, ErrorCode.Conflict, CloseCode.Replaced, notice);
      }
      this.announceDeparture(replaced, replaced.connectionId);
    }
    if (predecessor === undefined) {
      const restored = await this.budgets.restore(fingerprint, replaced?.connectionId);
      if (session.closed) {
        // Kept for the key's next connection, which may be waiting for exactly this one.
        await this.budgets.release(fingerprint, connection.id, restored);
        await this.deps.store.unregisterPeer(fingerprint, connection.id);
        throw new ProtocolError(ErrorCode.Unavailable, "connection closed during register");
      }
      session.budget = restored;
    }
    clearTimeout(session.registerTimer);
    session.fingerprint = fingerprint;
    session.alias = registration.alias;
    session.meta = request.meta ?? {};
    this.sessionsByFingerprint.set(fingerprint, session);
    this.sessionsByAlias.set(registration.alias, session);
    connection.join(peerRoom(fingerprint));
    return { type: "registered", body: { from: fingerprint, payload: { fingerprint, alias: registration.alias } } };
  }

  private async join(session: Session, message: Incoming): Promise<Outgoing> {
    const request = requests.parseJoin(message.payload);
    const fingerprint = this.fingerprintOf(session);
    const result = await this.joinGate.enterWhile(session, request.namespace, () =>
      this.deps.store.joinNamespace(request.namespace, fingerprint, {
        appType: request.appType,
        meta: request.meta,
        listLimit: LIMITS.joinListLimit,
      }),
    );
    if (request.meta !== undefined) session.meta = requests.mergeMeta(session.meta, request.meta);
    return this.enterScope(session, request.namespace, result, { appType: request.appType, roomSize: undefined });
  }

  private async joinRoom(session: Session, message: Incoming): Promise<Outgoing> {
    const roomId = requests.parseRoomId(message.payload);
    const result = await this.joinGate.enterWhile(session, roomId, () => this.deps.store.joinRoom(roomId, this.fingerprintOf(session), LIMITS.joinListLimit));
    // The size is kept to create the room again if this member is the first back after the state was lost.
    return this.enterScope(session, roomId, result, { appType: undefined, roomSize: result.maxSize });
  }

  private async enterScope(session: Session, name: string, join: JoinResult, kind: Pick<Membership, "appType" | "roomSize">): Promise<Outgoing> {
    const room = scopeRoom(name);
    session.connection.join(room);
    const known = session.memberships.get(name);
    // A repeated join keeps what the first one recorded (the store kept its app_type too).
    if (known === undefined || join.added) session.memberships.set(name, { ...kind, joinSeq: join.seq });
    else known.joinSeq = join.seq;
    if (join.added) {
      const member = join.member;
      await this.deps.delivery.emit(room, "peer_joined", { from: member.fingerprint, namespace: name, payload: member }, [session.connection.id], { scope: name, seq: join.seq });
    }
    return peerList(name, join);
  }

  private async leave(session: Session, message: Incoming): Promise<undefined> {
    const name = requests.parseNamespace(message.payload);
    const fingerprint = this.fingerprintOf(session);
    await this.deps.store.leaveScope(name, fingerprint);
    session.memberships.delete(name);
    const room = scopeRoom(name);
    session.connection.leave(room);
    await this.deps.delivery.emit(room, "peer_left", { from: fingerprint, namespace: name }, [session.connection.id]);
    return undefined;
  }

  /**
   * signal and relay: one target, which must share a namespace or room with the sender. A target
   * on this process is served synchronously, with no store call; the payload text travels as it
   * arrived when the transport kept it (raw /ws), so it is never serialized again.
   */
  private targeted(session: Session, message: Incoming): undefined | Promise<undefined> {
    const request = requests.parseTargeted(message.to, message.payload);
    const from = this.fingerprintOf(session);
    const local = this.sessionsByFingerprint.get(request.to) ?? this.sessionsByAlias.get(request.to);
    if (local !== undefined && local.fingerprint !== undefined) {
      // Both peers live here: their adapter rooms are authoritative.
      if (local === session) throw badRequest("cannot send to yourself");
      if (!shareScope(session.connection.rooms, local.connection.rooms)) throw new ProtocolError(ErrorCode.Forbidden, "no shared namespace");
      if (message.payloadJson !== undefined) local.connection.sendEncoded(message.type, targetedJson(from, local.fingerprint, message.payloadJson));
      else local.connection.send(message.type, { from, to: local.fingerprint, payload: request.payload, ts: Date.now() });
      return undefined;
    }
    return this.targetedRemote(from, message, request);
  }

  private async targetedRemote(from: string, message: Incoming, request: requests.TargetedRequest): Promise<undefined> {
    const target = await this.deps.store.resolveTarget(from, request.to);
    const body = { from, to: target.fingerprint, payload: request.payload, ts: Date.now() };
    this.deps.delivery.toPeer(target, message.type, body, message.payloadJson === undefined ? undefined : targetedJson(from, target.fingerprint, message.payloadJson, body.ts));
    return undefined;
  }

  private async broadcast(session: Session, message: Incoming): Promise<undefined> {
    const request = requests.parseBroadcast(message.payload);
    const room = scopeRoom(request.namespace);
    if (!session.connection.rooms.has(room)) {
      if (!(await this.deps.store.scopeExists(request.namespace))) throw new ProtocolError(ErrorCode.NotFound, "no such namespace");
      throw new ProtocolError(ErrorCode.Forbidden, "join the namespace before broadcasting");
    }
    const except = [session.connection.id];
    for (const fingerprint of request.exclude) except.push(peerRoom(fingerprint));
    await this.deps.delivery.emit(
      room,
      "broadcast",
      { from: this.fingerprintOf(session), namespace: request.namespace, payload: { namespace: request.namespace, data: request.data }, ts: Date.now() },
      except,
    );
    return undefined;
  }

  private async discover(session: Session, message: Incoming): Promise<Outgoing> {
    const request = requests.parseDiscover(message.payload);
    const page = await this.deps.store.listMembers(request.namespace, this.fingerprintOf(session), request.limit);
    return peerList(request.namespace, page);
  }

  private async match(session: Session, message: Incoming): Promise<Outgoing> {
    const request = requests.parseMatch(message.payload);
    const fingerprint = this.fingerprintOf(session);
    const outcome = await this.deps.store.requestMatch({ ...request, fingerprint, sessionId: randomUUID().replaceAll("-", "") });
    if (outcome.status === "waiting") return { type: "match", body: { payload: { status: "waiting", namespace: request.namespace } } };
    const body: Body = {
      namespace: request.namespace,
      payload: { namespace: request.namespace, session_id: outcome.sessionId, peers: outcome.peers },
      ts: Date.now(),
    };
    const others = outcome.peers.filter((peer) => peer.fingerprint !== fingerprint).map((peer) => peerRoom(peer.fingerprint));
    await this.deps.delivery.emit(others, "matched", body);
    return { type: "matched", body };
  }

  private async matchCancel(session: Session, message: Incoming): Promise<Outgoing> {
    const namespace = requests.parseNamespace(message.payload);
    if (!(await this.deps.store.cancelMatch(namespace, this.fingerprintOf(session)))) {
      throw new ProtocolError(ErrorCode.NotFound, "no match request to cancel");
    }
    return { type: "match", body: { payload: { status: "cancelled", namespace } } };
  }

  private async createRoom(session: Session, message: Incoming): Promise<Outgoing> {
    const request = requests.parseCreateRoom(message.payload);
    const roomId = request.roomId ?? `room-${randomBytes(8).toString("hex")}`;
    const info = await this.deps.store.createRoom(roomId, this.fingerprintOf(session), request.maxSize);
    session.memberships.set(roomId, { appType: undefined, roomSize: info.max_size, joinSeq: undefined });
    session.connection.join(scopeRoom(roomId));
    return { type: "room_created", body: { payload: { room_id: info.room_id, max_size: info.max_size, owner: info.owner } } };
  }

  private async roomInfo(_session: Session, message: Incoming): Promise<Outgoing> {
    const info = await this.deps.store.roomInfo(requests.parseRoomId(message.payload));
    return { type: "room_info", body: { payload: info } };
  }

  private async kick(session: Session, message: Incoming): Promise<undefined> {
    const request = requests.parseKick(message.payload);
    const owner = this.fingerprintOf(session);
    await this.deps.store.kick(request.roomId, owner, request.fingerprint);
    const target = peerRoom(request.fingerprint);
    const room = scopeRoom(request.roomId);
    const delivery = this.deps.delivery;
    await delivery.emit(target, "kick", { from: owner, payload: { room_id: request.roomId, fingerprint: request.fingerprint }, ts: Date.now() });
    await delivery.leave(target, room, owner);
    await delivery.emit(room, "peer_left", { from: request.fingerprint, namespace: request.roomId }, [target]);
    return undefined;
  }

  private async metadata(session: Session, message: Incoming): Promise<undefined> {
    const patch = requests.parseMetadata(message.payload);
    await this.deps.store.updateMeta(this.fingerprintOf(session), patch);
    session.meta = requests.mergeMeta(session.meta, patch);
    return undefined;
  }

  /** Tells the members of every scope a peer left that it is gone. */
  private announceDeparture(departure: Departure, connectionId: string): void {
    for (const name of departure.scopes) {
      void this.deps.delivery.emit(scopeRoom(name), "peer_left", { from: departure.fingerprint, namespace: name }, [connectionId]);
    }
  }
}

/** The body of a delivered signal or relay, built around the payload's received text (fingerprints are hex: nothing to escape). */
function targetedJson(from: string, to: string, payloadJson: string, ts = Date.now()): string {
  return `{"from":"${from}","to":"${to}","payload":${payloadJson},"ts":${ts}}`;
}

function peerList(name: string, page: { peers: MemberInfo[]; total: number }): Outgoing {
  return { type: "peer_list", body: { namespace: name, payload: { namespace: name, peers: page.peers, total: page.total } } };
}

export function errorBody(code: number, message: string, ref?: string): Body {
  return { payload: ref === undefined ? { code, message } : { code, message, ref } };
}

/**
 * Closes a connection the server decided to end, telling the client why first: an `error` whose
 * payload carries the close code, so Socket.IO clients (which see no WebSocket close code) learn it too.
 */
export function closeWithNotice(connection: Connection, code: ErrorCode, closeCode: CloseCode, message: string): void {
  connection.send("error", { payload: { code, message, close_code: closeCode } });
  connection.close(closeCode, message);
}

/** True when two adapter room sets share a namespace or room. */
function shareScope(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  for (const room of a) {
    if (room.startsWith(SCOPE_PREFIX) && b.has(room)) return true;
  }
  return false;
}
