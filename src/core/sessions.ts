import type { Session } from "./session.ts";

/** Told when this process starts and stops holding a fingerprint or an alias (see backends/peer-channels.ts). */
export interface HeldPeers {
  hold(fingerprint: string): void;
  release(fingerprint: string): void;
}

/**
 * The sessions of this process: every open one by connection id, registered ones also by
 * fingerprint and by alias. The store gives a fingerprint or an alias to one connection in the
 * whole deployment, so each maps to at most one session here; a session is unindexed only if it
 * still holds the entry (a newer connection with the same key may hold it already).
 */
export class Sessions {
  private readonly byId = new Map<string, Session>();
  private readonly byFingerprint = new Map<string, Session>();
  private readonly byAlias = new Map<string, Session>();

  constructor(private readonly held?: HeldPeers) {}

  /** Open sessions, registered or not. */
  get size(): number {
    return this.byId.size;
  }

  /** Indexes a session that just opened, by its connection id. */
  add(session: Session): void {
    this.byId.set(session.connection.id, session);
  }

  /** The open session of a connection of this process. */
  withConnectionId(connectionId: string): Session | undefined {
    return this.byId.get(connectionId);
  }

  /** The registered session holding a fingerprint on this process. */
  withFingerprint(fingerprint: string): Session | undefined {
    return this.byFingerprint.get(fingerprint);
  }

  /** A signal's `to` on this process: a fingerprint first, then an alias, so an alias never captures another peer's messages. */
  resolve(to: string): Session | undefined {
    return this.byFingerprint.get(to) ?? this.byAlias.get(to);
  }

  /** Indexes a session that just registered, by its fingerprint and alias. */
  identify(session: Session): void {
    if (session.fingerprint !== undefined) {
      this.byFingerprint.set(session.fingerprint, session);
      this.held?.hold(session.fingerprint);
    }
    if (session.alias !== undefined) this.indexAlias(session, session.alias);
  }

  /** Gives a registered session another alias (the store gave it a new one after a state loss). */
  rename(session: Session, alias: string): void {
    this.unindexAlias(session);
    session.alias = alias;
    this.indexAlias(session, alias);
  }

  /** Forgets a closed session everywhere it is still indexed. */
  remove(session: Session): void {
    this.byId.delete(session.connection.id);
    if (session.fingerprint !== undefined && this.byFingerprint.get(session.fingerprint) === session) {
      this.byFingerprint.delete(session.fingerprint);
      this.held?.release(session.fingerprint);
    }
    this.unindexAlias(session);
  }

  // Messages may be addressed to an alias: it is held like the fingerprint, unless it is the
  // fingerprint (a dialect identity is its own alias), which is held once.
  private indexAlias(session: Session, alias: string): void {
    this.byAlias.set(alias, session);
    if (alias !== session.fingerprint) this.held?.hold(alias);
  }

  private unindexAlias(session: Session): void {
    const alias = session.alias;
    if (alias === undefined || this.byAlias.get(alias) !== session) return;
    this.byAlias.delete(alias);
    if (alias !== session.fingerprint) this.held?.release(alias);
  }

  /** Every open session. */
  all(): IterableIterator<Session> {
    return this.byId.values();
  }

  /** The registered sessions at this moment (a copy: callers await between them). */
  registered(): Session[] {
    return [...this.byFingerprint.values()];
  }
}
