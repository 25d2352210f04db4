import type { IncomingMessage, ServerResponse } from "node:http";
import type { Config } from "../config/load.ts";
import type { Hub } from "../core/hub.ts";
import type { Ack, Session } from "../core/session.ts";
import type { ClientRequest } from "../protocol/requests.ts";
import type { MemberPage, StoreStats } from "../backends/state-store.ts";
import type { WsProtocol } from "../transport/ws-endpoint.ts";
import type { DialectConnection } from "./dialect-connection.ts";

/** The dialects peer-server serves besides its own protocol. */
export const DIALECT_NAMES = ["pigeon", "p2p", "randomchat"] as const;
export type DialectName = (typeof DIALECT_NAMES)[number];

/** Figures for the whole deployment, every worker and node, as `/stats` reports them. */
export interface DeploymentFigures extends StoreStats {
  /** Connections open, by transport (`ws`, `socket.io`, and each dialect's name), summed over every process. */
  connections: Record<string, number>;
}

/** What a dialect is built with. */
export interface DialectDeps {
  readonly config: Config;
  readonly hub: Hub;
  /** Whole-deployment figures for the dialect's HTTP endpoints. */
  deployment(): Promise<DeploymentFigures>;
  /** The first `limit` members of a public scope (oldest first), for the dialect's HTTP endpoints. */
  members(scope: string, limit: number): Promise<MemberPage>;
  /** When this process started (ms since the epoch). */
  readonly startedAt: number;
  /** This process's id in the deployment. */
  readonly nodeId: string;
}

/**
 * Another signaling protocol's clients, served unchanged as a thin binding over the core: it
 * translates its wire messages into core requests (register, join, leave, signal, match, ping) and
 * the core's messages back into its vocabulary (its DialectConnection), and keeps no peers, scopes,
 * queues or delivery of its own. Its identities and scope names carry a prefix no native client
 * can use, so dialects never meet each other or the native protocol.
 */
export interface Dialect {
  readonly name: DialectName;
  /** Exact WebSocket paths it serves (the query is ignored when matching). */
  readonly wsPaths: readonly string[];
  readonly protocol: WsProtocol<DialectConnection>;
  /**
   * Answers an HTTP request if `path` is one of the dialect's own; returns false otherwise.
   * Only GET and HEAD reach it.
   */
  handleHttp?(path: string, request: IncomingMessage, response: ServerResponse): boolean;
}

/**
 * Hands one core request to the hub, in the session's order, with its direct reply (the envelope
 * `{type, ...body}`, including `error` and `ok`) going to `onReply` instead of the connection: a
 * dialect decides what, if anything, its client is told.
 */
export function submit(hub: Hub, session: Session, request: ClientRequest, onReply: Ack = ignoreReply): void {
  hub.receive(session, request, onReply);
}

const ignoreReply: Ack = () => undefined;

/** The code of a direct reply that is an `error` (`{type:"error", payload:{code}}`); undefined for any other reply. */
export function errorCodeOf(reply: Record<string, unknown>): number | undefined {
  if (reply["type"] !== "error") return undefined;
  const code = (reply["payload"] as { code?: unknown } | undefined)?.code;
  return typeof code === "number" ? code : undefined;
}

/** Writes a JSON HTTP answer with the given extra headers. */
export function sendJson(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), "cache-control": "no-store", ...headers });
  response.end(text);
}
