import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { AdminListener } from "../../src/admin/admin-listener.ts";
import { MAX_ADMIN_BODY, adminApiRoutes } from "../../src/admin/admin-api-route.ts";
import type { AdminAnswer, AdminRequest } from "../../src/admin/admin-api.ts";
import { metricsRoute } from "../../src/admin/metrics-route.ts";

const listeners: AdminListener[] = [];
afterEach(async () => {
  await Promise.all(listeners.splice(0).map((listener) => listener.close()));
});

/** An admin listener on a free loopback port serving the admin API routes with `answer`, and /metrics. */
async function listen(answer: (request: AdminRequest) => Promise<AdminAnswer>, token = ""): Promise<string> {
  const routes = [metricsRoute(async () => ({ contentType: "text/plain", body: "up 1\n" })), ...adminApiRoutes(answer)];
  const listener = new AdminListener({ host: "127.0.0.1", port: 0, token, routes, logger: pino({ level: "silent" }) });
  listeners.push(listener);
  return `http://127.0.0.1:${(await listener.listen()).port}`;
}

describe("the admin API's routes on the admin listener", () => {
  it("hand every method and path under /admin/ over with its query and body, and write the answer as it is", async () => {
    const seen: AdminRequest[] = [];
    const url = await listen(async (request) => {
      seen.push(request);
      return request.method === "DELETE" ? { status: 204, body: "" } : { status: 405, body: '{"error":"method not allowed"}', allow: "GET, POST" };
    });
    const refused = await fetch(`${url}/admin/bans?x=1`, { method: "PUT", body: '{"ip":"10.0.0.1"}' });
    expect(refused.status).toBe(405);
    expect(refused.headers.get("allow")).toBe("GET, POST");
    expect(refused.headers.get("content-type")).toBe("application/json");
    expect(await refused.json()).toEqual({ error: "method not allowed" });
    const deleted = await fetch(`${url}/admin/bans/abc`, { method: "DELETE" });
    expect(deleted.status).toBe(204);
    expect(deleted.headers.get("content-type")).toBeNull();
    expect(await deleted.text()).toBe("");
    expect(seen).toEqual([
      { method: "PUT", path: "/admin/bans?x=1", body: '{"ip":"10.0.0.1"}' },
      { method: "DELETE", path: "/admin/bans/abc", body: "" },
    ]);
    // The listener's own routes are untouched; /admin without its slash is no admin API path.
    expect(await (await fetch(`${url}/metrics`)).text()).toBe("up 1\n");
    expect((await fetch(`${url}/admin`)).status).toBe(404);
  });

  it(`answers 413 for a body over ${MAX_ADMIN_BODY} bytes, without asking the API`, async () => {
    let asked = 0;
    const url = await listen(async () => {
      asked++;
      return { status: 200, body: "{}" };
    });
    const response = await fetch(`${url}/admin/bans`, { method: "POST", body: "x".repeat(MAX_ADMIN_BODY + 1) });
    expect(response.status).toBe(413);
    expect(asked).toBe(0);
    expect((await fetch(`${url}/admin/bans`, { method: "POST", body: "x".repeat(MAX_ADMIN_BODY) })).status).toBe(200);
  });

  it("admin_token applies to the admin API as to /metrics", async () => {
    const url = await listen(async () => ({ status: 200, body: "{}" }), "s3cret");
    expect((await fetch(`${url}/admin/bans`)).status).toBe(401);
    expect((await fetch(`${url}/admin/bans`, { headers: { authorization: "Bearer s3cret" } })).status).toBe(200);
  });
});
