import type { JoinResult } from "../state/store.ts";
import { scopeRoom, type JoinFence } from "../delivery/delivery.ts";
import type { HeldDelivery } from "../delivery/join-fence.ts";
import type { Session } from "./session.ts";

/**
 * Makes a join exact for the peer that joins: what reaches its connection through the namespace
 * or room before its peer_list is out waits until after it, and peer_joined notices its list
 * covered are dropped. Why the connection must enter the adapter room before the store is asked,
 * and where the adapter asks `route`, is in delivery/join-fence.ts.
 */
export class JoinGate {
  /** Rooms being entered by connections of this process, all sessions together. */
  private enteringCount = 0;

  constructor(private readonly sessionOf: (connectionId: string) => Session | undefined) {}

  /** True when no connection here is entering a room: only fenced notices need routing then. */
  idle(): boolean {
    return this.enteringCount === 0;
  }

  /**
   * Runs `joinInStore` with the connection already in the scope's adapter room, holding whatever
   * arrives through that room until the reply to this request is sent (Session.afterReply); then
   * delivers it, except peer_joined notices about peers that joined before this one. If the store
   * refuses, the held messages are dropped and the room left: the connection never was a member.
   */
  async enterWhile<T extends JoinResult>(session: Session, name: string, joinInStore: () => Promise<T>): Promise<T> {
    const room = scopeRoom(name);
    const connection = session.connection;
    if (connection.rooms.has(room) || session.entering?.has(room) === true) return joinInStore();
    const held: HeldDelivery[] = [];
    (session.entering ??= new Map()).set(room, held);
    this.enteringCount++;
    connection.join(room);
    let result: T;
    try {
      result = await joinInStore();
    } catch (error) {
      this.stopEntering(session, room);
      if (!session.closed) connection.leave(room);
      throw error;
    }
    session.afterReply = () => {
      this.stopEntering(session, room);
      for (const delivery of held) {
        if (delivery.fence?.scope === name && delivery.fence.seq <= result.seq) continue;
        delivery.deliver();
      }
    };
    return result;
  }

  /** A closed session's joins in flight: nothing it held will be delivered. */
  forget(session: Session): void {
    for (const room of [...(session.entering?.keys() ?? [])]) this.stopEntering(session, room);
    session.afterReply = undefined;
  }

  /**
   * Decides for one recipient of an adapter delivery on this process: deliver now (true), never
   * (false: a peer_joined its own peer_list covered), or later (the queue of a room it is still
   * entering, when that room is the only way the message reaches it).
   */
  route(connectionId: string, rooms: ReadonlySet<string>, fence: JoinFence | undefined): boolean | HeldDelivery[] {
    const session = this.sessionOf(connectionId);
    if (session === undefined) return true;
    if (fence !== undefined) {
      const own = session.memberships.get(fence.scope)?.joinSeq;
      if (own !== undefined && fence.seq <= own && session.entering?.has(scopeRoom(fence.scope)) !== true) return false;
    }
    if (session.entering === undefined) return true;
    let held: HeldDelivery[] | undefined;
    for (const room of rooms) {
      if (!session.connection.rooms.has(room)) continue;
      const entering = session.entering.get(room);
      if (entering === undefined) return true; // it also gets this through a room it is in already
      held ??= entering;
    }
    return held ?? true;
  }

  private stopEntering(session: Session, room: string): void {
    if (session.entering?.delete(room) !== true) return;
    this.enteringCount--;
    if (session.entering.size === 0) session.entering = undefined;
  }
}
