import type { ResumedPeer } from "../backends/state-store.ts";
import { peerRoom } from "../delivery/delivery.ts";
import type { ConnectionEnd } from "../observability/connection-log.ts";
import { CloseCode, ErrorCode, ProtocolError } from "../protocol/errors.ts";
import { mergeMeta, type MetadataRequest, type RegisterRequest } from "../protocol/requests.ts";
import type { IceServerEntry, ServerMessage } from "../protocol/server-messages.ts";
import { aliasCandidates, fingerprintOf } from "./alias.ts";
import type { Challenges } from "./challenges.ts";
import type { CoreContext } from "./context.ts";
import { announceDeparture } from "./departures.ts";
import { BANNED } from "./moderation.ts";
import type { Recovery } from "./recovery.ts";
import { parseBufferedMessage, resumeHashOf, type Resumption } from "./resumption.ts";
import { peerOf, type Session } from "./session.ts";
import { withFields } from "../internals/object-copy.ts";

/** What registration uses, with two hooks of the hub. */
export interface RegistrationContext
  extends Pick<
    CoreContext,
    "store" | "delivery" | "sessions" | "joins" | "budgets" | "registrationLimits" | "access" | "nodeId" | "log" | "logger" | "clock"
  > {
  /** The STUN/TURN servers a newly registered peer is given; undefined when none are configured. */
  readonly iceServers: (fingerprint: string) => IceServerEntry[] | undefined;
  /** Where a disconnected peer leaves the store, or waits for it to be back. */
  readonly recovery: Pick<Recovery, "unregister">;
  /** Closes a connection of this process with a notice (Hub.closeLocal); false if it is not here. */
  readonly closeLocal: (connectionId: string, code: ErrorCode, closeCode: CloseCode, message: string) => boolean;
  /** Whether a ban of this fingerprint is in force (see core/moderation.ts); read without a store call. */
  readonly banned: (fingerprint: string) => boolean;
  /** Decides whether a register proves possession of its key (key_proof). */
  readonly challenges: Pick<Challenges, "prove">;
  /** Suspends dropped peers and catches what races a resume (session resume). */
  readonly resumption: Pick<Resumption, "enabled" | "issue" | "suspends" | "dropping" | "suspend" | "resuspend" | "beginResume" | "endResume">;
}

const REPLACED_NOTICE = "replaced by a newer connection with the same key";

/**
 * A peer's identity for the life of its connection: `register` (the fingerprint, a unique alias,
 * replacing an older connection with the same key), `metadata`, and leaving the registry when the
 * connection closes. The key's message budget follows it across connections (see MessageBudgets).
 */
export class Registration {
  constructor(private readonly ctx: RegistrationContext) {}

  /**
   * Registers the session's key. A requested alias must be free (409); without one, the first free
   * generated alias is taken. If the key is connected already, that connection is replaced: it gets
   * error 409 with close_code 4001 and is closed, its namespaces get one peer_left, and its budget
   * passes to this one, unless it is verified and this register is not (409). A banned fingerprint
   * is refused with 403; one banned while its registration was at the store is closed (4004) as a
   * connected banned peer is. A proof that fails, or none under key_proof `required`, is refused
   * with 401 first, before anything is counted or changed; a key the connection's access token is
   * not for (its `sub`) with 403. Registrations are limited per client address (429), then per key.
   * With resume on, a native peer is given a resume token; a register presenting the token of the
   * key's registration, suspended within its grace or live, resumes it instead (see resume).
   */
  async register(session: Session, request: RegisterRequest): Promise<ServerMessage<"registered">> {
    const { store, delivery, sessions, budgets } = this.ctx;
    // First, so that registers signed by someone without the key never spend the key's registrations.
    const verified = this.ctx.challenges.prove(session, request);
    const fingerprint = request.identity ?? fingerprintOf(request.publicKey);
    const connection = session.connection;
    this.ctx.access.checkSubject(session, fingerprint);
    if (this.ctx.banned(fingerprint)) throw new ProtocolError(ErrorCode.Forbidden, BANNED);
    // The address first: a client rotating keys must not fill the per-key limiter either.
    const refusal = await this.ctx.registrationLimits.consume(connection.remoteAddress, fingerprint);
    if (refusal === "address") throw new ProtocolError(ErrorCode.TooMany, "too many registrations from this address");
    if (refusal === "key") throw new ProtocolError(ErrorCode.TooMany, "too many registrations for this key");
    if (request.resumeToken !== undefined && request.identity === undefined && this.ctx.resumption.enabled) {
      const resumed = await this.resume(session, fingerprint, request.resumeToken, verified);
      if (resumed !== undefined) return resumed;
    }
    // Dialect identities are never suspended: their clients know nothing of resuming.
    const resume = request.identity === undefined ? this.ctx.resumption.issue() : undefined;
    const registration = await store.registerPeer({
      fingerprint,
      connectionId: connection.id,
      nodeId: this.ctx.nodeId,
      alias: request.alias,
      // Only used when no alias is asked for: a taken alias is refused (409), never replaced. A
      // dialect identity is its own alias: it has a prefix no native alias or fingerprint can have.
      aliasCandidates: request.alias !== undefined ? [] : request.identity !== undefined ? [request.identity] : aliasCandidates(fingerprint),
      meta: request.meta ?? {},
      verified,
      ...(resume === undefined ? {} : { resumeHash: resume.hash }),
    });
    if (session.closed) {
      await store.unregisterPeer(fingerprint, connection.id);
      throw new ProtocolError(ErrorCode.Unavailable, "connection closed during register");
    }
    const replaced = registration.replaced;
    // The key's message budget goes on: a registered connection of this process hands its own over
    // before it is closed; otherwise the connection before saved it, or saves it once told to close here.
    const here = replaced === undefined ? undefined : sessions.withConnectionId(replaced.connectionId);
    const predecessor = here?.fingerprint === undefined ? undefined : here;
    if (predecessor !== undefined) session.budget = budgets.handOver(predecessor);
    if (replaced !== undefined) {
      if (!this.ctx.closeLocal(replaced.connectionId, ErrorCode.Conflict, CloseCode.Replaced, REPLACED_NOTICE)) {
        delivery.closeElsewhere(replaced.connectionId, ErrorCode.Conflict, CloseCode.Replaced, REPLACED_NOTICE);
      }
      announceDeparture(delivery, replaced, replaced.connectionId);
    }
    if (predecessor === undefined) {
      const restored = await budgets.restore(fingerprint, replaced?.connectionId);
      if (session.closed) {
        // Kept for the key's next connection, which may be waiting for exactly this one.
        await budgets.release(fingerprint, connection.id, restored);
        await store.unregisterPeer(fingerprint, connection.id);
        throw new ProtocolError(ErrorCode.Unavailable, "connection closed during register");
      }
      session.budget = restored;
    }
    session.cancelRegisterTimeout?.();
    session.cancelRegisterTimeout = undefined;
    session.fingerprint = fingerprint;
    session.alias = registration.alias;
    session.verified = verified;
    session.challenge = undefined;
    session.meta = request.meta ?? {};
    session.resumeToken = resume?.token;
    const held = sessions.identify(session);
    connection.join(peerRoom(fingerprint));
    // Reachable from every node before anyone can learn of it from the reply.
    await held;
    if (session.closed) throw new ProtocolError(ErrorCode.Unavailable, "connection closed during register");
    this.ctx.log.registered(connection, fingerprint, registration.alias, replaced?.connectionId);
    // A ban made while the store was asked: every process closed what the ban covered then, which
    // this connection was not yet. (Closed here, its `registered` reply is never sent.)
    if (this.ctx.banned(fingerprint)) this.ctx.closeLocal(connection.id, ErrorCode.Forbidden, CloseCode.Disconnected, BANNED);
    const resumable = resume === undefined ? undefined : { resume_token: resume.token, resumed: false };
    return this.registered(fingerprint, registration.alias, verified, resumable);
  }

  /**
   * Resumes the key's registration on this connection if `token` is its token: the peer keeps its
   * alias, meta, namespaces, rooms and match tickets (the register's own alias and meta are not
   * used), a live connection holding it is replaced (4001, no peer_left: the peer never left), and
   * the messages buffered while it was suspended follow the reply, then whatever reached it while
   * the store was asked. Undefined when the registration cannot be resumed (no such peer, another
   * token, its grace over): the caller registers the key afresh, which departs the old one.
   */
  private async resume(session: Session, fingerprint: string, token: string, verified: boolean): Promise<ServerMessage<"registered"> | undefined> {
    const { store, delivery, sessions, joins, budgets, resumption } = this.ctx;
    const connection = session.connection;
    const room = peerRoom(fingerprint);
    // In the peer's own room before the store gives the peer to this connection (see JoinGate.hold).
    const held = joins.hold(session, room);
    resumption.beginResume(fingerprint, connection, held);
    const abandon = (): void => {
      resumption.endResume(fingerprint, connection);
      joins.unhold(session, room);
      if (!session.closed) connection.leave(room);
    };
    let resumed: ResumedPeer | undefined;
    try {
      resumed = await store.resumePeer({ fingerprint, resumeHash: resumeHashOf(token), connectionId: connection.id, nodeId: this.ctx.nodeId, verified, now: this.ctx.clock.now() });
    } catch (error) {
      abandon();
      throw error;
    }
    // Not resumable: what reached the room meanwhile was for the registration being replaced.
    if (resumed === undefined) {
      abandon();
      return undefined;
    }
    const { alias, replaced, messages, missed } = resumed;
    if (session.closed) {
      abandon();
      await resumption.resuspend(fingerprint, connection.id, messages);
      throw new ProtocolError(ErrorCode.Unavailable, "connection closed during register");
    }
    // From here to the reply nothing waits: no delivery can come between them.
    const here = replaced === undefined ? undefined : sessions.withConnectionId(replaced);
    const predecessor = here?.fingerprint === undefined ? undefined : here;
    if (predecessor !== undefined) session.budget = budgets.handOver(predecessor);
    else {
      // The budget follows on its own time, so the reply and the buffer go out together.
      const interim = session.budget;
      void budgets.restore(fingerprint, replaced).then((bucket) => {
        if (!session.closed && session.budget === interim) session.budget = bucket;
      });
    }
    if (replaced !== undefined && !this.ctx.closeLocal(replaced, ErrorCode.Conflict, CloseCode.Replaced, REPLACED_NOTICE)) {
      delivery.closeElsewhere(replaced, ErrorCode.Conflict, CloseCode.Replaced, REPLACED_NOTICE);
    }
    session.cancelRegisterTimeout?.();
    session.cancelRegisterTimeout = undefined;
    session.fingerprint = fingerprint;
    session.alias = alias;
    session.verified = verified;
    session.challenge = undefined;
    session.meta = resumed.meta;
    session.resumeToken = token;
    // Not awaited: nothing may wait between here and the reply. A frame that finds the channel not
    // yet held goes through the store and is sent again once it answers (Messaging.sendByStore).
    void sessions.identify(session);
    joins.resumed(session, resumed.scopes);
    this.ctx.log.registered(connection, fingerprint, alias, replaced);
    this.ctx.logger.debug({ conn: connection.id, fingerprint, buffered: messages.length, missed }, "resumed");
    session.afterReply = () => {
      resumption.endResume(fingerprint, connection);
      joins.unhold(session, room);
      for (const message of messages) {
        const [type, bodyJson] = parseBufferedMessage(message);
        connection.sendEncoded(type, bodyJson);
      }
      for (const waiting of held) waiting.deliver();
    };
    if (this.ctx.banned(fingerprint)) this.ctx.closeLocal(connection.id, ErrorCode.Forbidden, CloseCode.Disconnected, BANNED);
    return this.registered(fingerprint, alias, verified, { resume_token: token, resumed: true, missed });
  }

  /** The `registered` reply: identity, then what resume adds, then the ICE servers. */
  private registered(
    fingerprint: string,
    alias: string,
    verified: boolean,
    resume: { resume_token: string; resumed: boolean; missed?: number } | undefined,
  ): ServerMessage<"registered"> {
    const iceServers = this.ctx.iceServers(fingerprint);
    const identity = resume === undefined ? { fingerprint, alias, verified } : { fingerprint, alias, verified, ...resume };
    const payload = iceServers === undefined ? identity : withFields(identity, { ice_servers: iceServers });
    return { type: "registered", body: { from: fingerprint, payload } };
  }

  /** `metadata`: merges the patch into the peer's meta, in the store and in what this node keeps. No reply. */
  async updateMeta(session: Session, request: MetadataRequest): Promise<undefined> {
    await this.ctx.store.updateMeta(peerOf(session), request.meta);
    session.meta = mergeMeta(session.meta, request.meta);
    return undefined;
  }

  /**
   * The registered part of a closed session's cleanup (the hub has unindexed it): the key's budget
   * is saved first, so a registration that no longer finds the peer finds its budget; then the
   * peer is suspended (its connection dropped and it may resume: see Resumption.suspends), or it
   * leaves the store and its namespaces and rooms are told. Never rejects.
   */
  async release(session: Session, end?: ConnectionEnd): Promise<void> {
    const fingerprint = session.fingerprint;
    if (fingerprint === undefined) return;
    const connectionId = session.connection.id;
    const { resumption } = this.ctx;
    resumption.endResume(fingerprint, session.connection);
    const suspends = resumption.suspends(session, end);
    // Before anything waits: deliveries already on their way here are kept for the peer.
    if (suspends) resumption.dropping(fingerprint);
    const scopes = [...session.memberships.keys()];
    const budget = session.budget;
    session.budget = undefined;
    // A budget is kept against a client that reconnects to refill it; the server's own stop ended
    // this connection, so nothing is kept, and a stop of many peers sends no budget to the store for each.
    if (budget !== undefined && end?.serverStop !== true) await this.ctx.budgets.release(fingerprint, connectionId, budget);
    if (suspends) {
      try {
        // False: another connection holds the peer now; there is nothing to tell.
        await resumption.suspend(fingerprint, connectionId);
        return;
      } catch (error) {
        this.ctx.logger.warn({ err: error, fingerprint }, "could not suspend a dropped peer; it departs");
      }
    }
    await this.ctx.recovery.unregister(fingerprint, connectionId, scopes);
  }
}
