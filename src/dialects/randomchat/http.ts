import type { IncomingMessage, ServerResponse } from "node:http";
import { sendJson, type DialectDeps } from "../dialect.ts";

/** The original's health check, under the dialect's base path. */
export const RANDOMCHAT_HEALTHZ_PATH = "/randomchat/healthz";

/**
 * `GET /randomchat/healthz` → `{ok: true, uptime: <s>, clients: <n>, instanceId}`: `clients` counts
 * the random-chat connections of the whole deployment (every worker and node), `uptime` is this
 * process's, in seconds, and `instanceId` is its id in the deployment. 503 `{ok: false}` when the
 * deployment's figures cannot be read (the state backend is down). Returns false for other paths.
 */
export function handleRandomChatHttp(deps: Pick<DialectDeps, "deployment" | "startedAt" | "nodeId">, path: string, _request: IncomingMessage, response: ServerResponse): boolean {
  if (path !== RANDOMCHAT_HEALTHZ_PATH) return false;
  deps.deployment().then(
    (figures) =>
      sendJson(response, 200, {
        ok: true,
        uptime: Math.round(Date.now() - deps.startedAt) / 1_000,
        clients: figures.connections["randomchat"] ?? 0,
        instanceId: deps.nodeId,
      }),
    () => sendJson(response, 503, { ok: false, instanceId: deps.nodeId }),
  );
  return true;
}
