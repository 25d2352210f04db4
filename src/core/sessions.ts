import type { Session } from "./session.ts";

/** Told when this process starts and stops holding a fingerprint (see backends/peer-channels.ts). */
export interface HeldPeers {
  /** Resolves once frames for it reach this process. */
  hold(fingerprint: string): Promise<void>;
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

  /**
   * Indexes a session that just registered, by its fingerprint and alias. Resolves once messages
   * sent to its fingerprint from other nodes reach this process (at once without peer channels).
   */
  identify(session: Session): Promise<void> {
    if (session.alias !== undefined) this.byAlias.set(session.alias, session);
    if (session.fingerprint === undefined) return HELD;
    this.byFingerprint.set(session.fingerprint, session);
    return this.held?.hold(session.fingerprint) ?? HELD;
  }

  /** Gives a registered session another alias (the store gave it a new one after a state loss). */
  rename(session: Session, alias: string): void {
    if (session.alias !== undefined && this.byAlias.get(session.alias) === session) this.byAlias.delete(session.alias);
    session.alias = alias;
    this.byAlias.set(alias, session);
  }

  /** Forgets a closed session everywhere it is still indexed. */
  remove(session: Session): void {
    this.byId.delete(session.connection.id);
    if (session.fingerprint !== undefined && this.byFingerprint.get(session.fingerprint) === session) {
      this.byFingerprint.delete(session.fingerprint);
      this.held?.release(session.fingerprint);
    }
    if (session.alias !== undefined && this.byAlias.get(session.alias) === session) this.byAlias.delete(session.alias);
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

const HELD: Promise<void> = Promise.resolve();
