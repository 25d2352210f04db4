import type { JoinResult, ResumedScope } from "../backends/state-store.ts";
import { scopeRoom, type Delivery, type JoinFence } from "../delivery/delivery.ts";
import type { HeldDelivery } from "../delivery/join-fence.ts";
import type { ServerBody } from "../protocol/server-messages.ts";
import type { Membership, Session } from "./session.ts";
import { withFields } from "../internals/object-copy.ts";

/**
 * Makes joins exact: a peer learns of every other member of a namespace or room once, from its own
 * peer_list if the other joined first, otherwise from one peer_joined, which always arrives after
 * that list. Everything that decides it is here: the joiner enters the adapter room before the
 * store is asked, what reaches it through that room meanwhile is held until its reply is out, each
 * peer_joined carries its joiner's seq, and a notice its recipient's list covered is dropped.
 * Why the connection must enter the room first, and where the adapter asks `route`, is in
 * delivery/join-fence.ts. The sessions' Membership.joinSeq is written here only.
 */
export class JoinGate {
  /** Rooms being entered by connections of this process, all sessions together. */
  private enteringCount = 0;

  constructor(
    private readonly sessionOf: (connectionId: string) => Session | undefined,
    private readonly delivery: Pick<Delivery, "emit">,
  ) {}

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

  /**
   * Records a join the store accepted (after enterWhile) and tells the other members: one
   * peer_joined, fenced with the joiner's seq. A repeated join keeps what the first one recorded
   * (the store kept its app_type too), takes the new seq and tells no one.
   */
  async joined(session: Session, name: string, join: JoinResult, kind: Pick<Membership, "appType" | "roomSize">): Promise<void> {
    const room = scopeRoom(name);
    session.connection.join(room);
    const known = session.memberships.get(name);
    if (known === undefined || join.added) session.memberships.set(name, withFields(kind, { joinSeq: join.seq }));
    else known.joinSeq = join.seq;
    if (!join.added) return;
    const member = join.member;
    const body = { from: member.fingerprint, namespace: name, payload: member } satisfies ServerBody<"peer_joined">;
    await this.delivery.emit(room, "peer_joined", body, [session.connection.id], { scope: name, seq: join.seq });
  }

  /**
   * Puts the connection in `room` (a resuming peer's own room) and holds whatever reaches it
   * through that room, into the returned queue, until `unhold`: with the sharded Redis adapter the
   * node subscribes to the room's channel now, before the store gives the peer to this connection.
   */
  hold(session: Session, room: string): HeldDelivery[] {
    const existing = session.entering?.get(room);
    if (existing !== undefined) return existing;
    const held: HeldDelivery[] = [];
    (session.entering ??= new Map()).set(room, held);
    this.enteringCount++;
    session.connection.join(room);
    return held;
  }

  /** Stops holding `room` (see hold); what was held is the caller's to deliver or drop. */
  unhold(session: Session, room: string): void {
    this.stopEntering(session, room);
  }

  /**
   * A resumed session is back in the namespaces and rooms its peer never left. Its peer_list is
   * long gone, and notices of the time it was away were not kept: every notice reaches it.
   */
  resumed(session: Session, scopes: readonly ResumedScope[]): void {
    for (const scope of scopes) {
      const room = scope.roomSize !== undefined;
      session.memberships.set(scope.name, { appType: room ? undefined : scope.appType, roomSize: scope.roomSize, joinSeq: undefined });
      session.connection.join(scopeRoom(scope.name));
    }
  }

  /** A room the session just created: its only member, so no notice, and every later one is new to it. */
  created(session: Session, roomId: string, maxSize: number): void {
    session.memberships.set(roomId, { appType: undefined, roomSize: maxSize, joinSeq: undefined });
    session.connection.join(scopeRoom(roomId));
  }

  /** The session left the scope: it hears nothing more through it. */
  left(session: Session, name: string): void {
    session.memberships.delete(name);
    session.connection.leave(scopeRoom(name));
  }

  /**
   * The shared state was lost and the session joined `name` again: its peer_list predates the loss,
   * so whoever joins from now on must reach it, whatever their new seq. Returns what the session
   * knew of its membership there.
   */
  rejoined(session: Session, name: string): Membership | undefined {
    const membership = session.memberships.get(name);
    if (membership !== undefined) membership.joinSeq = undefined;
    return membership;
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
