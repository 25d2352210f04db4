import { get } from "node:http";
import WebSocket from "ws";
import { adminOf, type ServerProcess } from "./server-process.ts";

/** An admin API answer: its status, its JSON body (undefined when empty) and its headers. */
export interface AdminReply {
  status: number;
  body: Record<string, unknown> & { error?: string };
  headers: Headers;
}

/** Calls the admin API on a server's admin listener, with `Authorization: Bearer <token>` when a token is given. */
export async function admin(server: ServerProcess, method: string, path: string, options: { body?: unknown; token?: string } = {}): Promise<AdminReply> {
  const headers: Record<string, string> = {};
  if (options.token !== undefined) headers["authorization"] = `Bearer ${options.token}`;
  if (options.body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(`${adminOf(server)}${path}`, {
    method,
    headers,
    ...(options.body === undefined ? {} : { body: typeof options.body === "string" ? options.body : JSON.stringify(options.body) }),
  });
  const text = await response.text();
  return { status: response.status, body: text === "" ? {} : (JSON.parse(text) as AdminReply["body"]), headers: response.headers };
}

/**
 * Tries a WebSocket upgrade from `localAddress` (any of 127.0.0.0/8 reaches the loopback on Linux):
 * "open" when it opened (then closed at once), else the HTTP status of the refusal.
 */
export function upgradeStatus(url: string, localAddress: string): Promise<number | "open"> {
  return upgradeOutcome(url, { localAddress });
}

/** Tries a WebSocket upgrade with these client options (headers, origin, ...): "open", or the HTTP status of the refusal. */
export function upgradeOutcome(url: string, options: WebSocket.ClientOptions): Promise<number | "open"> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, options);
    socket.once("open", () => {
      socket.close();
      resolve("open");
    });
    socket.once("unexpected-response", (request, response) => {
      resolve(response.statusCode ?? 0);
      response.resume();
      request.destroy();
    });
    socket.once("error", (error) => reject(error));
  });
}

/** The HTTP status of a new Engine.IO (Socket.IO) long-polling handshake from `localAddress`. */
export function pollingHandshakeStatus(httpUrl: string, localAddress: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = get(`${httpUrl}/socket.io/?EIO=4&transport=polling`, { localAddress }, (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
    request.once("error", reject);
  });
}
