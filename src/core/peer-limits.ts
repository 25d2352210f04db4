import type { KickBan, PeerCaps } from "../backends/state-store.ts";
import type { Config } from "../config/load.ts";
import { badRequest } from "../protocol/errors.ts";
import type { Criteria } from "../protocol/requests.ts";

/**
 * What one peer may hold at once, and how long a kick keeps it out of a room.
 *
 * The caps are checked by the store, in the same atomic step as the change: what a peer holds also
 * changes through other peers' requests on other processes (a kick, an owner leaving and passing
 * its rooms on, a match completed by someone else), which a count kept beside the connection would
 * learn of only later. The criteria bound needs no state and is checked here, before the store.
 */
export interface PeerLimits {
  /** max_scopes_per_peer, max_rooms_per_peer, max_tickets_per_peer: given to the store with each change. */
  readonly caps: PeerCaps;
  /** max_criteria_bytes: the largest match criteria, in UTF-8 bytes of JSON. */
  readonly maxCriteriaBytes: number;
  /** kick_ban in ms; 0: a kicked peer may join again at once. */
  readonly kickBanMs: number;
}

type LimitOptions = Pick<Config, "maxScopesPerPeer" | "maxRoomsPerPeer" | "maxTicketsPerPeer" | "maxCriteriaBytes" | "kickBanMs">;

/** The limits the options set, built once. */
export function peerLimitsOf(config: LimitOptions): PeerLimits {
  return Object.freeze({
    caps: Object.freeze({ maxScopes: config.maxScopesPerPeer, maxRooms: config.maxRoomsPerPeer, maxTickets: config.maxTicketsPerPeer }),
    maxCriteriaBytes: config.maxCriteriaBytes,
    kickBanMs: config.kickBanMs,
  });
}

/** 400, naming the option, when the criteria's JSON takes more than `maxBytes` bytes. */
export function checkCriteriaSize(criteria: Criteria, maxBytes: number): void {
  const json = JSON.stringify(criteria);
  // A character takes at most 3 bytes in UTF-8 (a surrogate pair: 4 for 2), so short criteria need no count.
  if (json.length * 3 <= maxBytes) return;
  if (Buffer.byteLength(json, "utf8") > maxBytes) throw badRequest(`criteria larger than max_criteria_bytes (${maxBytes})`);
}

/** The ban a kick made at `now` records; undefined when kick_ban is 0. */
export function kickBanAt(now: number, kickBanMs: number): KickBan | undefined {
  return kickBanMs > 0 ? { now, until: now + kickBanMs } : undefined;
}
