import type { PeerDetails } from "../backends/state-store.ts";
import type { BanList } from "../limits/bans.ts";
import { CloseCode, ErrorCode } from "../protocol/errors.ts";
import type { CoreContext } from "./context.ts";
import { announceDeparture } from "./departures.ts";

/** What a process knows of the deployment's bans, read without a call to the store (limits/bans.ts). */
export type BanCheck = Pick<BanList, "fingerprintBanned" | "addressBanned" | "bans">;

/** A BanCheck with no bans: the default of a hub given none. */
export const NO_BANS: BanCheck = { fingerprintBanned: () => false, addressBanned: () => false, bans: [] };

/** What moderation uses, with a hook of the hub. */
export interface ModerationContext extends Pick<CoreContext, "store" | "delivery" | "sessions"> {
  readonly bans: BanCheck;
  /** Closes a connection of this process with a notice (Hub.closeLocal); false if it is not here. */
  readonly closeLocal: (connectionId: string, code: ErrorCode, closeCode: CloseCode, message: string) => boolean;
}

/** The message of the notice a banned peer gets, and of the error a banned fingerprint's `register` gets. */
export const BANNED = "banned";
/** The message of an operator's disconnect that gives no reason. */
export const DISCONNECTED = "disconnected by the operator";

/**
 * The operator's hand on connections (the admin API): closing one peer wherever it is connected,
 * and closing what a ban covers. Every such close is error 403 with `close_code` 4004, then close
 * 4004; the peer then leaves the shared state as any closed connection does, and its namespaces and
 * rooms are told `peer_left`.
 */
export class Moderation {
  constructor(private readonly ctx: ModerationContext) {}

  /**
   * Closes a registered peer's connection, on this process or any other of the deployment; a
   * suspended peer (session resume) departs at once. Resolves with what the store holds about the
   * peer, or undefined when the fingerprint is not registered. The close on another process is on
   * its way when this resolves, not done.
   */
  async disconnect(fingerprint: string, reason: string = DISCONNECTED): Promise<PeerDetails | undefined> {
    const peer = await this.ctx.store.peerDetails(fingerprint);
    if (peer === undefined) return undefined;
    if ((await this.ctx.store.resolvePeer(fingerprint))?.suspended === true) {
      // Suspended (session resume): no connection to close; it departs now, not at its grace's end.
      const departure = await this.ctx.store.unregisterPeer(fingerprint, peer.connectionId);
      if (departure !== undefined) announceDeparture(this.ctx.delivery, departure, peer.connectionId);
      return peer;
    }
    if (!this.ctx.closeLocal(peer.connectionId, ErrorCode.Forbidden, CloseCode.Disconnected, reason)) {
      this.ctx.delivery.closeElsewhere(peer.connectionId, ErrorCode.Forbidden, CloseCode.Disconnected, reason);
    }
    return peer;
  }

  /**
   * Closes every connection of this process that a ban in force covers: its registered
   * fingerprint, or its client address (registered or not). Returns how many it closed.
   */
  closeBanned(): number {
    const { bans, sessions } = this.ctx;
    if (bans.bans.length === 0) return 0;
    const banned: string[] = [];
    for (const session of sessions.all()) {
      const fingerprint = session.fingerprint;
      if ((fingerprint !== undefined && bans.fingerprintBanned(fingerprint)) || bans.addressBanned(session.connection.remoteAddress)) {
        banned.push(session.connection.id);
      }
    }
    // Closed once the walk is over: a close takes the session out of the registry being walked.
    let closed = 0;
    for (const connectionId of banned) if (this.ctx.closeLocal(connectionId, ErrorCode.Forbidden, CloseCode.Disconnected, BANNED)) closed++;
    return closed;
  }
}
