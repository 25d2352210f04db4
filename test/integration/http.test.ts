import { request } from "node:http";
import WebSocket from "ws";
import { describe, expect, it } from "vitest";
import { TRANSPORTS, type TestPeer } from "../helpers/peers.ts";
import { getJson } from "../helpers/server-process.ts";
import { useServer } from "../helpers/use-server.ts";
import { waitFor } from "../helpers/wait.ts";

const MAX_PEERS = 250;

// A closed peer departs at once here (resume_grace 0): resume has its own tests (resume.test.ts).
const fixture = useServer({
  config: { max_peers: MAX_PEERS, resume_grace: 0 },
  afterPeersClosed: async () => {
    // Every test starts from an empty server so absolute counts are meaningful. The server updates
    // its counts as it processes each close.
    await waitFor(stats, (value) => value.total_peers === 0 && connectionTotal(value) === 0, { timeoutMs: 5_000, what: "/stats to show no peer and no connection" });
  },
});

interface Stats {
  total_peers: number;
  max_peers: number;
  namespaces: Record<string, number>;
  connections: Record<string, number>;
  uptime_seconds: number;
}

const stats = async (): Promise<Stats> => (await getJson(`${fixture.server.http}/stats`)).body as unknown as Stats;
const connectionTotal = (value: Stats): number => Object.values(value.connections).reduce((sum, count) => sum + count, 0);

const peer = (transport: "ws" | "sio", namespace?: string): Promise<TestPeer> => fixture.peer(transport, { namespace });

/** Sends one raw HTTP request and returns status, content type and body text. */
function httpRequest(method: string, path: string): Promise<{ status: number; type: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${fixture.server.http}${path}`, { method }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, type: res.headers["content-type"], body }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("GET /health", () => {
  it("reports status ok, the peer count, max_peers from config and a Unix-seconds timestamp", async () => {
    const before = Math.floor(Date.now() / 1000);
    const { status, body } = await getJson(`${fixture.server.http}/health`);
    const after = Math.ceil(Date.now() / 1000);
    expect(status).toBe(200);
    expect(body).toEqual({ status: "ok", peers: 0, max_peers: MAX_PEERS, timestamp: expect.any(Number) });
    expect(Number.isInteger(body["timestamp"])).toBe(true);
    expect(body["timestamp"]).toBeGreaterThanOrEqual(before);
    expect(body["timestamp"]).toBeLessThanOrEqual(after);
  });

  it("is JSON with a content type", async () => {
    const response = await httpRequest("GET", "/health");
    expect(response.status).toBe(200);
    expect(response.type).toMatch(/^application\/json/);
    expect(JSON.parse(response.body)).toMatchObject({ status: "ok" });
  });

  it("ignores a query string", async () => {
    const { status, body } = await getJson(`${fixture.server.http}/health?probe=1`);
    expect(status).toBe(200);
    expect(body["status"]).toBe("ok");
  });

  it("counts registered peers of both transports and drops them when they disconnect", async () => {
    const a = await peer("ws");
    await peer("sio");
    expect((await getJson(`${fixture.server.http}/health`)).body["peers"]).toBe(2);
    a.close();
    await a.closed;
    const peers = await waitFor(
      async () => (await getJson(`${fixture.server.http}/health`)).body["peers"],
      (count) => count === 1,
      { timeoutMs: 5_000, what: "/health to count 1 peer" },
    );
    expect(peers).toBe(1);
  });
});

describe("GET /stats", () => {
  it("has the documented shape on an idle server", async () => {
    const value = await stats();
    // Further fields (e.g. per-worker detail) may be added; these are the documented ones.
    expect(value).toMatchObject({
      total_peers: 0,
      max_peers: MAX_PEERS,
      namespaces: {},
      connections: { ws: 0, "socket.io": 0 },
      uptime_seconds: expect.any(Number),
    });
    expect(value.namespaces).toEqual({});
    expect(value.connections).toEqual({ ws: 0, "socket.io": 0, pigeon: 0, p2p: 0, randomchat: 0 });
    expect(Number.isInteger(value.uptime_seconds)).toBe(true);
    expect(value.uptime_seconds).toBeGreaterThanOrEqual(0);
  });

  it("counts connections per transport; total_peers counts only registered peers", async () => {
    await fixture.connect("ws"); // connected, never registered
    await peer("ws");
    await peer("sio");
    await peer("sio");
    const value = await waitFor(stats, (s) => connectionTotal(s) === 4, { timeoutMs: 5_000, what: "/stats to count 4 connections" });
    expect(value.connections).toEqual({ ws: 2, "socket.io": 2, pigeon: 0, p2p: 0, randomchat: 0 });
    expect(value.total_peers).toBe(3);
  });

  describe.each(TRANSPORTS)("namespace counts follow join and leave (%s)", (transport) => {
    it("join, a second joiner, leave and disconnect each change the count", async () => {
      const ns = `stats-${transport}-counts`;
      const other = `stats-${transport}-other`;
      const a = await peer(transport);
      const b = await peer(transport === "ws" ? "sio" : "ws");
      await a.join(ns);
      expect((await stats()).namespaces).toEqual({ [ns]: 1 });

      await b.join(ns);
      await b.join(other);
      expect((await stats()).namespaces).toEqual({ [ns]: 2, [other]: 1 });
      expect((await stats()).total_peers).toBe(2);

      // Joining twice is idempotent: the count does not change.
      await a.join(ns);
      expect((await stats()).namespaces[ns]).toBe(2);

      a.send("leave", { payload: { namespace: ns } });
      await b.next("peer_left");
      expect((await stats()).namespaces).toEqual({ [ns]: 1, [other]: 1 });

      b.close();
      const after = await waitFor(stats, (s) => s.total_peers === 1, { timeoutMs: 5_000, what: "/stats to count 1 peer" });
      // Empty namespaces are gone from the listing, not left at zero.
      expect(after.namespaces).toEqual({});
    });
  });

  it("never lists private rooms, only public namespaces", async () => {
    const owner = await peer("ws", "stats-public");
    const reply = await owner.request("create_room", { payload: { room_id: "stats-secret-room" } }, ["room_created"]);
    expect(reply.type).toBe("room_created");
    const guest = await peer("sio");
    expect((await guest.request("join_room", { payload: { room_id: "stats-secret-room" } }, ["peer_list"])).type).toBe("peer_list");
    const value = await stats();
    expect(value.namespaces).toEqual({ "stats-public": 1 });
    expect(value.total_peers).toBe(2);
  });
});

describe("other requests", () => {
  it.each(["/", "/nope", "/health/extra", "/stats.json", "/ws"])("GET %s is 404", async (path) => {
    const response = await httpRequest("GET", path);
    expect(response.status).toBe(404);
  });

  it.each([
    ["POST", "/health"],
    ["PUT", "/stats"],
    ["DELETE", "/health"],
    ["PATCH", "/stats"],
    ["POST", "/nope"],
  ])("%s %s is 405", async (method, path) => {
    const response = await httpRequest(method, path);
    expect(response.status).toBe(405);
  });

  it("a WebSocket upgrade on an unknown path is refused with 404", async () => {
    const socket = new WebSocket(`ws://127.0.0.1:${fixture.server.port}/not-ws`);
    const status = await new Promise<number>((resolve, reject) => {
      socket.once("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0));
      socket.once("open", () => reject(new Error("upgrade on an unknown path was accepted")));
      socket.once("error", (error) => reject(error));
    });
    socket.terminate();
    expect(status).toBe(404);
  });
});
