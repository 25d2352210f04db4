import { CloseCode, ErrorCode, ProtocolError, badRequest } from "../protocol/errors.ts";
import type { RefreshRequest } from "../protocol/requests.ts";
import type { ServerMessage } from "../protocol/server-messages.ts";
import { namespaceAllowed, type AccessClaims, type AccessTokenVerifier } from "../trust/access-tokens.ts";
import type { AccessRules, CoreContext } from "./context.ts";
import type { Session } from "./session.ts";

/** What access uses, with a hook of the hub. */
export interface AccessContext extends Pick<CoreContext, "clock"> {
  /** Verifies a `refresh`'s token; undefined when access tokens are off. */
  readonly verifier: AccessTokenVerifier | undefined;
  /** Closes a connection of this process with a notice (Hub.closeLocal). */
  readonly closeLocal: (connectionId: string, code: ErrorCode, closeCode: CloseCode, message: string) => boolean;
}

/** Longest wait one timer may take (Node's timers overflow past 2^31 - 1 ms and fire at once). */
const MAX_TIMER_MS = 2 ** 31 - 1;
const EXPIRED = "access token expired";
const OK_REFRESH: ServerMessage<"ok"> = Object.freeze({ type: "ok", body: Object.freeze({ payload: Object.freeze({ ref: "refresh" }) }) });

/**
 * A connection's access token once it is in (access tokens on: see trust/access-tokens.ts and the
 * connection gate): its claims bound what the session may do, and its `exp` ends the session (error
 * 401, close 4003) unless a `refresh` brought a newer token first.
 *
 * - `sub`: the only fingerprint the connection may register (403 otherwise);
 * - `namespaces`: the namespaces it may join and match in, a trailing `*` matching a prefix (403
 *   otherwise); rooms are not namespaces and are not bound by it;
 * - `refresh {token}`: a valid token (else 401, and nothing changes) with the same `sub` as the
 *   first if that had one (else 403) replaces the claims and the expiry; answered `ok`.
 */
export class Access implements AccessRules {
  constructor(private readonly ctx: AccessContext) {}

  /** Takes up the claims a new session's token granted; schedules the close at its expiry. */
  open(session: Session, claims: AccessClaims | undefined): void {
    if (claims === undefined) return;
    session.access = { claims, cancelExpiry: undefined };
    this.arm(session);
  }

  /** The session ended: its expiry no longer matters. */
  close(session: Session): void {
    session.access?.cancelExpiry?.();
    if (session.access !== undefined) session.access.cancelExpiry = undefined;
  }

  /** 403 unless the session's token lets it register `fingerprint`. */
  checkSubject(session: Session, fingerprint: string): void {
    const subject = session.access?.claims.subject;
    if (subject !== undefined && subject !== fingerprint) throw new ProtocolError(ErrorCode.Forbidden, "the access token is for another key (sub)");
  }

  /** 403 unless the session's token lets it into namespace `name`. */
  checkNamespace(session: Session, name: string): void {
    if (!namespaceAllowed(session.access?.claims, name)) throw new ProtocolError(ErrorCode.Forbidden, "the access token does not grant this namespace");
  }

  /** `refresh {token}`: see the class. */
  async refresh(session: Session, request: RefreshRequest): Promise<ServerMessage<"ok">> {
    const { verifier } = this.ctx;
    if (verifier === undefined) throw badRequest("access tokens are not in use");
    const verdict = await verifier.verify(request.token);
    if (!verdict.ok) throw new ProtocolError(verdict.status === 503 ? ErrorCode.Unavailable : ErrorCode.Unauthorized, verdict.reason);
    const claims = verdict.claims;
    const first = session.access?.claims.subject;
    if (first !== undefined && claims.subject !== first) throw new ProtocolError(ErrorCode.Forbidden, "the new access token is for another key (sub)");
    if (claims.subject !== undefined && session.fingerprint !== undefined && claims.subject !== session.fingerprint) {
      throw new ProtocolError(ErrorCode.Forbidden, "the new access token is for another key (sub)");
    }
    this.close(session);
    if (session.closed) return OK_REFRESH;
    session.access = { claims, cancelExpiry: undefined };
    this.arm(session);
    return OK_REFRESH;
  }

  /** Closes the session at its token's expiry (in steps of at most MAX_TIMER_MS); at once if it is past. */
  private arm(session: Session): void {
    const access = session.access;
    const expiresAt = access?.claims.expiresAt;
    if (access === undefined || expiresAt === undefined || session.closed) return;
    const wait = expiresAt - this.ctx.clock.now();
    if (wait <= 0) {
      access.cancelExpiry = undefined;
      this.ctx.closeLocal(session.connection.id, ErrorCode.Unauthorized, CloseCode.TokenExpired, EXPIRED);
      return;
    }
    access.cancelExpiry = this.ctx.clock.setTimer(() => {
      // A refresh since replaced the claims (and cancelled this timer): only the current ones count.
      if (session.access === access) this.arm(session);
    }, Math.min(wait, MAX_TIMER_MS));
  }
}
