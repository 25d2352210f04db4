import { createHmac } from "node:crypto";
import type { IceServerEntry } from "../protocol/server-messages.ts";

/** Where clients find STUN and TURN, and the TURN server's shared secret. */
export interface IceSettings {
  /** The TURN server's `static-auth-secret` (coturn `use-auth-secret`); "" serves no TURN credentials. */
  turnSecret: string;
  turnUrls: readonly string[];
  /** How long a credential stays valid, in ms. */
  turnTtlMs: number;
  stunUrls: readonly string[];
}

/**
 * The ICE servers a registered peer is given: the STUN URLs, and the TURN URLs with a credential
 * of the TURN REST scheme that coturn's `use-auth-secret` checks — the username is
 * `<expiry in unix seconds>:<fingerprint>` and the credential is base64(HMAC-SHA1(secret, username)),
 * so the TURN server needs no user database and a credential expires by itself. Undefined when
 * neither is configured.
 */
export function iceServersFor(settings: IceSettings, fingerprint: string, nowMs: number): IceServerEntry[] | undefined {
  const servers: IceServerEntry[] = [];
  if (settings.stunUrls.length > 0) servers.push({ urls: settings.stunUrls });
  if (settings.turnSecret !== "" && settings.turnUrls.length > 0) {
    const username = `${Math.floor((nowMs + settings.turnTtlMs) / 1000)}:${fingerprint}`;
    servers.push({ urls: settings.turnUrls, username, credential: turnCredential(settings.turnSecret, username) });
  }
  return servers.length > 0 ? servers : undefined;
}

/** The TURN REST credential of `username`: base64(HMAC-SHA1(secret, username)). */
export const turnCredential = (secret: string, username: string): string => createHmac("sha1", secret).update(username).digest("base64");
