import type { IncomingMessage, RequestListener, ServerResponse } from "node:http";
import { bearerCheck } from "./bearer-token.ts";

/** One endpoint of the admin listener: a method and an exact path, and what answers it. */
export interface AdminRoute {
  readonly method: "GET" | "POST" | "PUT" | "DELETE";
  /** The exact path; the query string is the handler's to read. */
  readonly path: string;
  /**
   * The route also answers every path below `path` (which then ends with `/`): `/bans/` with
   * `prefix` takes `/bans/<key>`; the handler reads the rest from `request.url`. An exact route
   * wins over a prefix, a longer prefix over a shorter one.
   */
  readonly prefix?: boolean;
  /** Answers the request. A throw or a rejection before anything was sent is answered 500. */
  handle(request: IncomingMessage, response: ServerResponse): void | Promise<void>;
}

/**
 * The admin listener's request handler: the token check first (with `admin_token` set, every
 * request without `Authorization: Bearer <admin_token>` gets 401, whatever its path, so that
 * nothing about the routes shows), then the route table: an unknown path is 404, a known path with
 * another method 405 with `Allow`. Two routes with the same method and path are a bug: it throws.
 */
export function adminHandler(routes: readonly AdminRoute[], token: string): RequestListener {
  const exact = new Map<string, Map<string, AdminRoute>>();
  const prefixes = new Map<string, Map<string, AdminRoute>>();
  for (const route of routes) {
    if (route.prefix === true && !route.path.endsWith("/")) throw new Error(`the prefix route ${route.path} must end with /`);
    const table = route.prefix === true ? prefixes : exact;
    const methods = table.get(route.path) ?? new Map<string, AdminRoute>();
    if (methods.has(route.method)) throw new Error(`two admin routes for ${route.method} ${route.path}`);
    methods.set(route.method, route);
    table.set(route.path, methods);
  }
  // Longest first: the most specific prefix answers.
  const prefixList = [...prefixes].sort(([a], [b]) => b.length - a.length);
  const find = (path: string): Map<string, AdminRoute> | undefined => exact.get(path) ?? prefixList.find(([prefix]) => path.startsWith(prefix))?.[1];
  const authorized = bearerCheck(token);
  return (request, response) => {
    if (authorized !== undefined && !authorized(request.headers.authorization)) {
      sendJson(response, 401, { error: "unauthorized" }, { "www-authenticate": 'Bearer realm="peer-server admin"' });
      return;
    }
    const methods = find((request.url ?? "/").split("?", 1)[0] ?? "/");
    if (methods === undefined) {
      sendJson(response, 404, { error: "not found" });
      return;
    }
    const route = methods.get(request.method ?? "");
    if (route === undefined) {
      sendJson(response, 405, { error: "method not allowed" }, { allow: [...methods.keys()].join(", ") });
      return;
    }
    const failed = (error: unknown): void => {
      if (!response.headersSent) sendJson(response, 500, { error: String(error) });
      else response.destroy();
    };
    try {
      const pending = route.handle(request, response);
      if (pending instanceof Promise) pending.catch(failed);
    } catch (error) {
      failed(error);
    }
  };
}

/** Answers with a JSON body, not cached. */
export function sendJson(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { ...headers, "content-type": "application/json", "content-length": Buffer.byteLength(text), "cache-control": "no-store" });
  response.end(text);
}
