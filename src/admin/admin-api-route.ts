import type { IncomingMessage } from "node:http";
import { ADMIN_PREFIX, type AdminAnswer, type AdminRequest } from "./admin-api.ts";
import { sendJson, type AdminRoute } from "./router.ts";

/** The largest request body the admin API reads; a larger one is 413. */
export const MAX_ADMIN_BODY = 64 * 1024;

/**
 * The admin listener's routes of the admin API: every method under `/admin/`, each request read
 * whole (at most MAX_ADMIN_BODY) and handed to `answer` — the API itself in a single process, the
 * forwarding to a worker in a cluster primary — which decides 404 and 405 for its paths.
 */
export function adminApiRoutes(answer: (request: AdminRequest) => Promise<AdminAnswer>): AdminRoute[] {
  const handle = async (request: IncomingMessage, response: Parameters<AdminRoute["handle"]>[1]): Promise<void> => {
    const body = await readBody(request);
    if (body === undefined) {
      sendJson(response, 413, { error: `the body may be at most ${MAX_ADMIN_BODY} bytes` }, { connection: "close" });
      return;
    }
    const answered = await answer({ method: request.method ?? "GET", path: request.url ?? "/", body });
    const headers: Record<string, string | number> = { "cache-control": "no-store" };
    if (answered.allow !== undefined) headers["allow"] = answered.allow;
    if (answered.body !== "") {
      headers["content-type"] = "application/json";
      headers["content-length"] = Buffer.byteLength(answered.body);
    }
    response.writeHead(answered.status, headers);
    response.end(answered.body);
  };
  return (["GET", "POST", "PUT", "DELETE"] as const).map((method) => ({ method, path: ADMIN_PREFIX, prefix: true, handle }));
}

/** The request's body as text; undefined once it passes MAX_ADMIN_BODY (the rest is not read). */
function readBody(request: IncomingMessage): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    request.on("data", (chunk: Buffer) => {
      length += chunk.length;
      if (length > MAX_ADMIN_BODY) {
        request.pause();
        resolve(undefined);
        return;
      }
      chunks.push(chunk);
    });
    request.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    request.on("error", reject);
  });
}
