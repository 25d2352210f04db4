import { SCOPE_PREFIX } from "../delivery/delivery.ts";
import { ErrorCode, ProtocolError } from "../protocol/errors.ts";
import { LIMITS } from "../protocol/requests.ts";
import type { ServerBody } from "../protocol/server-messages.ts";
import type { Departure } from "../backends/state-store.ts";
import { aliasCandidates } from "./alias.ts";
import type { CoreContext } from "./context.ts";
import { announceDeparture } from "./departures.ts";
import { resumeHashOf } from "./resumption.ts";
import type { Session } from "./session.ts";

/** What recovery uses. */
export type RecoveryContext = Pick<CoreContext, "store" | "delivery" | "sessions" | "joins" | "logger" | "clock" | "nodeId">;

/**
 * Keeps the shared state true to this process's connections through a backend outage: a peer
 * whose disconnect could not be written while the backend was down is removed once it is back,
 * and if the backend came back empty every peer connected here is registered again.
 */
export class Recovery {
  /**
   * Disconnects whose cleanup failed while the backend was down, by connection id: the peer's
   * fingerprint and the namespaces and rooms it was in, as this node knew them.
   */
  private readonly failedCleanups = new Map<string, Departure>();

  constructor(private readonly ctx: RecoveryContext) {}

  /**
   * Removes a disconnected peer from the store, if `connectionId` still holds it, and tells its
   * namespaces and rooms. When the backend is down, keeps it for storeRecovered: otherwise the peer
   * would stay listed. Never rejects.
   */
  async unregister(fingerprint: string, connectionId: string, scopes: string[]): Promise<void> {
    try {
      const departure = await this.ctx.store.unregisterPeer(fingerprint, connectionId);
      if (departure !== undefined) announceDeparture(this.ctx.delivery, departure, connectionId);
    } catch (error) {
      this.failedCleanups.set(connectionId, { fingerprint, scopes });
      this.ctx.logger.warn({ err: error, fingerprint }, "cleanup after disconnect deferred");
    }
  }

  /**
   * The state backend is reachable again. Cleanups that failed during the outage are retried. If
   * the backend may have lost state (`stateLost`: it came back empty, or it is another server that
   * may lack the last writes), every peer connected here is checked: one whose record is gone or
   * differs is registered again with its alias and meta, and each is put back in any namespace or
   * room it is missing from (a room that no longer exists is created again, owned by the first
   * member to come back). Peers found intact keep their place and their rooms' owners. Waiting
   * match tickets are not restored: they were lost with the state. A peer that disconnected during
   * the outage and is no longer listed is announced (peer_left) from what this node knew of its
   * namespaces and rooms, since the state that listed them is gone.
   *
   * The failed cleanups are handled `settleMs` later: their peer_left goes to other processes
   * through a backend that just came back, whose other clients (their adapter subscriptions)
   * reconnect on their own schedule; announced earlier, it would be lost for them.
   */
  async storeRecovered(stateLost: boolean, settleMs = 0): Promise<void> {
    const cleanups = [...this.failedCleanups];
    this.failedCleanups.clear();
    if (stateLost) {
      for (const session of this.ctx.sessions.registered()) {
        if (!session.closed) await this.reRegister(session);
      }
    }
    if (cleanups.length === 0) return;
    if (settleMs > 0) await new Promise<void>((resolve) => this.ctx.clock.setTimer(resolve, settleMs));
    for (const [connectionId, departure] of cleanups) {
      if (!stateLost) {
        await this.unregister(departure.fingerprint, connectionId, departure.scopes);
        continue;
      }
      try {
        // Whatever was lost, the peer's record may have been kept: remove it as usual.
        const removed = await this.ctx.store.unregisterPeer(departure.fingerprint, connectionId);
        if (removed !== undefined) {
          announceDeparture(this.ctx.delivery, removed, connectionId);
          continue;
        }
        // Unless the peer is back already (it reconnected since), its members still list it.
        if ((await this.ctx.store.resolvePeer(departure.fingerprint)) === undefined) announceDeparture(this.ctx.delivery, departure, connectionId);
      } catch (error) {
        this.ctx.logger.warn({ err: error, fingerprint: departure.fingerprint }, "could not announce a peer that left during the outage");
      }
    }
  }

  private async reRegister(session: Session): Promise<void> {
    const { store, sessions, joins, logger, nodeId } = this.ctx;
    const fingerprint = session.fingerprint as string;
    const connection = session.connection;
    const base = {
      fingerprint,
      connectionId: connection.id,
      nodeId,
      aliasCandidates: aliasCandidates(fingerprint),
      meta: session.meta,
      verified: session.verified,
      // Its token stays good: the client holds no other.
      ...(session.resumeToken === undefined ? {} : { resumeHash: resumeHashOf(session.resumeToken) }),
    };
    try {
      // Registering again is a takeover, which takes the peer out of its scopes (and passes its
      // rooms on): only when the record kept is not this connection's as it stands.
      const kept = await store.peerDetails(fingerprint);
      const intact = kept !== undefined && kept.connectionId === connection.id && kept.alias === session.alias && JSON.stringify(kept.meta) === JSON.stringify(session.meta);
      if (!intact) {
        let registration;
        try {
          registration = await store.registerPeer({ ...base, alias: session.alias });
        } catch (error) {
          if (!(error instanceof ProtocolError) || error.code !== ErrorCode.Conflict) throw error;
          // Someone else took the alias while the state was gone: take a generated one and say so.
          registration = await store.registerPeer({ ...base, alias: undefined });
        }
        if (registration.alias !== session.alias) {
          sessions.rename(session, registration.alias);
          const payload = { fingerprint, alias: registration.alias, verified: session.verified };
          connection.send("registered", { from: fingerprint, payload } satisfies ServerBody<"registered">);
        }
      }
    } catch (error) {
      logger.error({ err: error, fingerprint }, "could not restore a peer after the state was lost");
      return;
    }
    // Each namespace and room on its own: one that cannot be restored must not cost the others.
    // Joining a scope the peer is still in changes nothing.
    for (const room of [...connection.rooms]) {
      if (!room.startsWith(SCOPE_PREFIX)) continue;
      const name = room.slice(SCOPE_PREFIX.length);
      const membership = joins.rejoined(session, name);
      try {
        const appType = membership?.appType;
        if (appType !== undefined) await store.joinNamespace(name, fingerprint, { appType, meta: undefined, listLimit: 0 });
        else await this.restoreRoomMembership(name, fingerprint, membership?.roomSize ?? LIMITS.roomDefaultSize);
      } catch (error) {
        logger.error({ err: error, fingerprint, scope: name }, "could not restore a namespace or room after the state was lost");
      }
    }
  }

  /**
   * Joins a room again, creating it if the state lost it. Members on other processes restore the
   * same room at the same moment: whoever loses the create race (409) joins the winner's room.
   */
  private async restoreRoomMembership(roomId: string, fingerprint: string, maxSize: number): Promise<void> {
    const store = this.ctx.store;
    try {
      await store.joinRoom(roomId, fingerprint, 0);
      return;
    } catch (error) {
      if (!(error instanceof ProtocolError) || error.code !== ErrorCode.NotFound) throw error;
    }
    try {
      await store.createRoom(roomId, fingerprint, maxSize);
    } catch (error) {
      if (!(error instanceof ProtocolError) || error.code !== ErrorCode.Conflict) throw error;
      await store.joinRoom(roomId, fingerprint, 0);
    }
  }
}
