import { PeerError } from "./errors.ts";
import type { Memberships, WaitingTicket } from "./memberships.ts";
import type { PeerList, RequestBody, RequestType, ServerMessage } from "./protocol.ts";

/** What a restore needs from the client. */
export interface RestoreSteps {
  /** Sends a request on the new connection, ahead of the application's waiting requests. */
  send(type: RequestType, body: RequestBody): Promise<ServerMessage | undefined>;
  /** A step failed for a reason other than the connection; `forget`: the scope is no longer the client's. */
  failed(scope: string, error: PeerError, forget: boolean): void;
  /** A repeated match request was answered (waiting, or the group formed at once). */
  matched(reply: ServerMessage | undefined, ticket: WaitingTicket): void;
}

/**
 * After a fresh registration (the server did not resume the session): joins every namespace and
 * room again, creates again a room this client created that emptied meanwhile, and repeats the
 * waiting match requests. Resolves with the member list of each scope it is in again.
 */
export async function rejoin(memberships: Memberships, steps: RestoreSteps): Promise<Record<string, PeerList>> {
  const lists: Record<string, PeerList> = {};
  for (const [namespace, joined] of [...memberships.namespaces]) {
    const list = await step(steps, namespace, true, () => steps.send("join", { payload: { namespace, app_type: joined.appType, meta: joined.meta } }));
    if (list?.type === "peer_list") lists[namespace] = list.payload;
  }
  for (const [roomId, room] of [...memberships.rooms]) {
    const list = await step(steps, roomId, true, async () => {
      try {
        return await steps.send("join_room", { payload: { room_id: roomId } });
      } catch (error) {
        // The room emptied while this client was away, so it is gone: its creator makes it again.
        if (!room.created || !(error instanceof PeerError) || error.code !== 404) throw error;
        await steps.send("create_room", { payload: { room_id: roomId, max_size: room.maxSize } });
        return steps.send("discover", { payload: { namespace: roomId } });
      }
    });
    if (list?.type === "peer_list") lists[roomId] = list.payload;
  }
  for (const [namespace, ticket] of [...memberships.tickets]) {
    const reply = await step(steps, namespace, false, () => steps.send("match", { payload: { namespace, group_size: ticket.groupSize, criteria: ticket.criteria } }));
    if (reply !== undefined) steps.matched(reply, ticket);
  }
  return lists;
}

/** After a resume: the member lists as they are now (joins and departures in the gap were not kept for the client). */
export async function relist(memberships: Memberships, steps: RestoreSteps): Promise<Record<string, PeerList>> {
  const lists: Record<string, PeerList> = {};
  for (const scope of [...memberships.namespaces.keys(), ...memberships.rooms.keys()]) {
    const list = await step(steps, scope, false, () => steps.send("discover", { payload: { namespace: scope, limit: 1_000 } }));
    if (list?.type === "peer_list") lists[scope] = list.payload;
  }
  return lists;
}

/** One step: a refusal is reported (and, with `forget`, the scope dropped); a lost connection is left to the next reconnection. */
async function step(steps: RestoreSteps, scope: string, forget: boolean, run: () => Promise<ServerMessage | undefined>): Promise<ServerMessage | undefined> {
  try {
    return await run();
  } catch (error) {
    const failure = error instanceof PeerError ? error : new PeerError("connection_lost", `could not restore ${scope}: ${String(error)}`);
    if (failure.code !== "connection_lost") steps.failed(scope, failure, forget);
    return undefined;
  }
}
