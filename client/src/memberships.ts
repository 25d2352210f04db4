import type { Criteria, Meta } from "./protocol.ts";

/** A namespace the client joined, with what it joined with. */
export interface JoinedNamespace {
  appType: string | undefined;
  meta: Meta | undefined;
}

/** A room the client is in; `maxSize` is known when it created the room. */
export interface JoinedRoom {
  created: boolean;
  maxSize: number | undefined;
}

/** A match request still waiting for its group. */
export interface WaitingTicket {
  groupSize: number;
  criteria: Criteria | undefined;
}

/**
 * What the client is in, as its own successful requests and the server's notices tell it: what a
 * fresh registration (the server did not resume the session) must join again, and what a resumed
 * one must list again.
 */
export class Memberships {
  readonly namespaces = new Map<string, JoinedNamespace>();
  readonly rooms = new Map<string, JoinedRoom>();
  readonly tickets = new Map<string, WaitingTicket>();

  joined(namespace: string, entry: JoinedNamespace): void {
    this.namespaces.set(namespace, entry);
  }

  enteredRoom(roomId: string, entry: JoinedRoom): void {
    const known = this.rooms.get(roomId);
    // A room this client created stays "created" when it joins it again after a reconnection.
    this.rooms.set(roomId, known?.created === true ? known : entry);
  }

  /** `leave` names a namespace or a room. */
  left(scope: string): void {
    this.namespaces.delete(scope);
    this.rooms.delete(scope);
    this.tickets.delete(scope);
  }

  waiting(namespace: string, ticket: WaitingTicket): void {
    this.tickets.set(namespace, ticket);
  }

  /** Matched or cancelled. */
  ticketDone(namespace: string): void {
    this.tickets.delete(namespace);
  }

  kicked(roomId: string): void {
    this.rooms.delete(roomId);
  }
}
