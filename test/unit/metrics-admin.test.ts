import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { AdminListener } from "../../src/admin/admin-listener.ts";
import { bearerCheck } from "../../src/admin/bearer-token.ts";
import { metricsRoute } from "../../src/admin/metrics-route.ts";
import type { AdminRoute } from "../../src/admin/router.ts";

const logger = pino({ level: "silent" });
const listeners: AdminListener[] = [];

afterEach(async () => {
  await Promise.all(listeners.splice(0).map((listener) => listener.close()));
});

/** An admin listener on a free loopback port; closed after the test. */
async function listen(routes: readonly AdminRoute[], token = ""): Promise<string> {
  const listener = new AdminListener({ host: "127.0.0.1", port: 0, token, routes, logger });
  listeners.push(listener);
  const address = await listener.listen();
  return `http://127.0.0.1:${address.port}`;
}

const text = (body: string): AdminRoute["handle"] => (_request, response) => {
  response.end(body);
};

describe("bearerCheck", () => {
  it("admits everything without a token", () => {
    expect(bearerCheck("")).toBeUndefined();
  });

  it("takes exactly `Bearer <token>`, the scheme in any case", () => {
    const check = bearerCheck("s3cret") as (header: string | undefined) => boolean;
    expect(check("Bearer s3cret")).toBe(true);
    expect(check("bearer s3cret")).toBe(true);
    for (const header of [undefined, "", "s3cret", "Bearer", "Bearer s3cre", "Bearer s3crett", "Basic s3cret", "Bearer s3cret extra"]) expect(check(header)).toBe(false);
  });
});

describe("the admin listener's route table", () => {
  it("answers exact routes, 404 for unknown paths, 405 with Allow for another method", async () => {
    const url = await listen([
      { method: "GET", path: "/a", handle: text("a") },
      { method: "POST", path: "/a", handle: text("posted") },
    ]);
    expect(await (await fetch(`${url}/a?x=1`)).text()).toBe("a");
    expect(await (await fetch(`${url}/a`, { method: "POST" })).text()).toBe("posted");
    expect((await fetch(`${url}/b`)).status).toBe(404);
    expect((await fetch(`${url}/a/b`)).status).toBe(404);
    const refused = await fetch(`${url}/a`, { method: "DELETE" });
    expect(refused.status).toBe(405);
    expect(refused.headers.get("allow")).toBe("GET, POST");
  });

  it("takes prefix routes, the exact and the longest first", async () => {
    const url = await listen([
      { method: "GET", path: "/bans/", prefix: true, handle: (request, response) => void response.end(`bans:${request.url}`) },
      { method: "GET", path: "/bans/all/", prefix: true, handle: text("all") },
      { method: "GET", path: "/bans/count", handle: text("count") },
    ]);
    expect(await (await fetch(`${url}/bans/abc`)).text()).toBe("bans:/bans/abc");
    expect(await (await fetch(`${url}/bans/all/x`)).text()).toBe("all");
    expect(await (await fetch(`${url}/bans/count`)).text()).toBe("count");
    expect((await fetch(`${url}/bansx`)).status).toBe(404);
  });

  it("refuses a table with the same route twice, or a prefix route without its slash", async () => {
    await expect(listen([{ method: "GET", path: "/a", handle: text("1") }, { method: "GET", path: "/a", handle: text("2") }])).rejects.toThrow("two admin routes");
    await expect(listen([{ method: "GET", path: "/a", prefix: true, handle: text("1") }])).rejects.toThrow("must end with /");
  });

  it("answers 500 for a handler that throws or rejects, and goes on serving", async () => {
    const url = await listen([
      {
        method: "GET",
        path: "/throws",
        handle: () => {
          throw new Error("boom");
        },
      },
      { method: "GET", path: "/rejects", handle: () => Promise.reject(new Error("later")) },
      { method: "GET", path: "/ok", handle: text("ok") },
    ]);
    expect((await fetch(`${url}/throws`)).status).toBe(500);
    expect((await fetch(`${url}/rejects`)).status).toBe(500);
    expect((await fetch(`${url}/ok`)).status).toBe(200);
  });

  it("with admin_token, answers 401 to every request without the token, known paths or not", async () => {
    const url = await listen([{ method: "GET", path: "/a", handle: text("a") }], "s3cret");
    for (const path of ["/a", "/unknown"]) {
      const refused = await fetch(`${url}${path}`);
      expect(refused.status).toBe(401);
      expect(refused.headers.get("www-authenticate")).toContain("Bearer");
      expect((await fetch(`${url}${path}`, { headers: { authorization: "Bearer wrong" } })).status).toBe(401);
    }
    const admitted = await fetch(`${url}/a`, { headers: { authorization: "Bearer s3cret" } });
    expect(admitted.status).toBe(200);
    expect(await admitted.text()).toBe("a");
  });
});

describe("GET /metrics", () => {
  it("serves the scrape with its content type, or 503 naming why it failed", async () => {
    let fail = false;
    const url = await listen([
      metricsRoute(async () => {
        if (fail) throw new Error("a worker is starting");
        return { contentType: "text/plain; version=0.0.4; charset=utf-8", body: "up 1\n" };
      }),
    ]);
    const served = await fetch(`${url}/metrics`);
    expect(served.status).toBe(200);
    expect(served.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    expect(await served.text()).toBe("up 1\n");
    fail = true;
    const failed = await fetch(`${url}/metrics`);
    expect(failed.status).toBe(503);
    expect(await failed.text()).toContain("a worker is starting");
  });
});

describe("AdminListener", () => {
  it("closes, kept-alive connections included, and is safe to close twice or before listening", async () => {
    const listener = new AdminListener({ host: "127.0.0.1", port: 0, token: "", routes: [{ method: "GET", path: "/a", handle: text("a") }], logger });
    await listener.close();
    const fresh = new AdminListener({ host: "127.0.0.1", port: 0, token: "", routes: [{ method: "GET", path: "/a", handle: text("a") }], logger });
    const { port } = await fresh.listen();
    expect((await fetch(`http://127.0.0.1:${port}/a`, { keepalive: true })).status).toBe(200);
    await Promise.all([fresh.close(), fresh.close()]);
    await expect(fetch(`http://127.0.0.1:${port}/a`)).rejects.toThrow();
  });

  it("rejects listen with the address's error when the port is taken", async () => {
    const first = new AdminListener({ host: "127.0.0.1", port: 0, token: "", routes: [], logger });
    listeners.push(first);
    const { port } = await first.listen();
    const second = new AdminListener({ host: "127.0.0.1", port, token: "", routes: [], logger });
    await expect(second.listen()).rejects.toThrow("EADDRINUSE");
  });
});
