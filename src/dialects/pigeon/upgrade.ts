import type { IncomingMessage } from "node:http";
import type { RefusedUpgrade } from "../../transport/ws-endpoint.ts";
import { sharedTokenCheck } from "../shared-token.ts";
import { isPeerId } from "./wire.ts";

const UNAUTHORIZED: RefusedUpgrade = { status: 401, reason: "Unauthorized" };
const FORBIDDEN: RefusedUpgrade = { status: 403, reason: "Forbidden" };
const BEARER = "Bearer ";

/** The query of an upgrade request (its path is matched by the endpoint). */
const queryOf = (request: IncomingMessage): URLSearchParams => {
  const url = request.url ?? "";
  const mark = url.indexOf("?");
  return new URLSearchParams(mark === -1 ? "" : url.slice(mark + 1));
};

/** The peerId of an upgrade that passed `checkPigeonUpgrade`. */
export const peerIdOfRequest = (request: IncomingMessage): string => queryOf(request).get("peerId") ?? "";

/**
 * Builds the check every PeerPigeon upgrade passes before the WebSocket exists, in the Go
 * original's order: the shared token when one is configured (`Authorization: Bearer <t>` or
 * `?token=<t>`, compared in constant time; 401), then the peerId (exactly 40 hex; 403).
 */
export function pigeonUpgradeCheck(token: string): (request: IncomingMessage) => RefusedUpgrade | undefined {
  const matches = sharedTokenCheck(token);
  return (request) => {
    const query = queryOf(request);
    if (matches !== undefined) {
      const header = request.headers.authorization;
      const bearer = header?.startsWith(BEARER) === true ? header.slice(BEARER.length) : undefined;
      // Both are checked whatever the first says: the answer's time does not tell which one was wrong.
      const byHeader = matches(bearer);
      const byQuery = matches(query.get("token"));
      if (!byHeader && !byQuery) return UNAUTHORIZED;
    }
    return isPeerId(query.get("peerId")) ? undefined : FORBIDDEN;
  };
}
