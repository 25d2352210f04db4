import { describe, expect, it } from "vitest";
import { adminApi, matchAdminPath, MAX_BANS, type AdminAnswer, type AdminSource } from "../../src/admin/admin-api.ts";
import { MemoryStore } from "../../src/backends/memory/memory-store.ts";
import { normalizeAddress } from "../../src/trust/client-address.ts";
import { ProtocolError } from "../../src/protocol/errors.ts";

describe("matchAdminPath", () => {
  it.each([
    ["GET", "/admin/stats", "stats", ""],
    ["GET", "/admin/stats?detail=peers", "stats", ""],
    ["GET", "/admin/namespaces", "namespaces", ""],
    ["GET", "/admin/namespaces/game-lobby?limit=10&offset=20", "namespace", "game-lobby"],
    ["GET", "/admin/namespaces/a%20b%2Fc", "namespace", "a b/c"],
    ["GET", "/admin/rooms/r1", "room", "r1"],
    ["GET", "/admin/peers/abc", "peer", "abc"],
    ["POST", "/admin/peers/p2p%3Aalice/disconnect", "disconnect", "p2p:alice"],
    ["GET", "/admin/bans", "listBans", ""],
    ["POST", "/admin/bans", "addBan", ""],
    ["DELETE", "/admin/bans/0123abcd", "removeBan", "0123abcd"],
  ])("%s %s -> %s(%j)", (method, path, operation, param) => {
    expect(matchAdminPath(method, path)).toMatchObject({ operation, param });
  });

  it("reads the query string", () => {
    const match = matchAdminPath("GET", "/admin/namespaces/lobby?limit=10&offset=20");
    expect("query" in match && [match.query.get("limit"), match.query.get("offset")]).toEqual(["10", "20"]);
  });

  it.each([
    ["GET", "/admin/nothing"],
    ["GET", "/admin/"],
    ["GET", "/admin/namespaces/"],
    ["GET", "/admin/namespaces/a/b"],
    ["GET", "/admin/peers/a/b"],
    ["POST", "/admin/peers//disconnect"],
    ["GET", "/metrics"],
    ["GET", "/admin/stats/"],
  ])("%s %s is 404", (method, path) => {
    expect(matchAdminPath(method, path)).toMatchObject({ status: 404 });
  });

  it.each([
    ["POST", "/admin/namespaces", "GET"],
    ["DELETE", "/admin/stats", "GET"],
    ["PUT", "/admin/bans", "GET, POST"],
    ["GET", "/admin/bans/abc", "DELETE"],
    ["GET", "/admin/peers/abc/disconnect", "POST"],
    ["constructor", "/admin/bans", "GET, POST"],
  ])("%s %s is 405, allowing %s", (method, path, allow) => {
    expect(matchAdminPath(method, path)).toEqual({ status: 405, message: "method not allowed", allow });
  });

  it("a parameter that is not valid percent-encoding is 400", () => {
    expect(matchAdminPath("GET", "/admin/namespaces/%E0%A4%A")).toMatchObject({ status: 400 });
  });
});

/** The admin API over a real MemoryStore, on a clock the test moves. */
function harness(overrides: Partial<AdminSource> = {}) {
  const store = new MemoryStore();
  const clock = { now: Date.UTC(2030, 0, 1) };
  const disconnects: [string, string][] = [];
  const errors: unknown[] = [];
  let changes = 0;
  let ids = 0;
  const source: AdminSource = {
    stats: async (peers) => ({ peers }),
    namespaces: async () => store.stats(),
    members: (name, limit, offset) => store.listMembers(name, null, limit, offset),
    room: (roomId) => store.roomInfo(roomId),
    peer: (fingerprint) => store.peerDetails(fingerprint),
    disconnect: async (fingerprint, reason) => {
      disconnects.push([fingerprint, reason]);
      return store.peerDetails(fingerprint);
    },
    addBan: (ban) => store.addBan(ban, clock.now),
    listBans: () => store.listBans(clock.now),
    removeBan: (id) => store.removeBan(id, clock.now),
    bansChanged: async () => {
      changes++;
      return 2;
    },
    normalizeAddress,
    now: () => clock.now,
    ...overrides,
  };
  const api = adminApi(source, { newId: () => `ban-${++ids}`, onError: (error) => errors.push(error) });
  const call = async (method: string, path: string, body: unknown = ""): Promise<{ status: number; body: Record<string, unknown>; answer: AdminAnswer }> => {
    const answer = await api({ method, path, body: typeof body === "string" ? body : JSON.stringify(body) });
    return { status: answer.status, body: answer.body === "" ? {} : (JSON.parse(answer.body) as Record<string, unknown>), answer };
  };
  const register = async (fingerprint: string, nodeId = "node-1") =>
    store.registerPeer({ fingerprint, connectionId: `conn-${fingerprint}`, nodeId, alias: undefined, aliasCandidates: [`alias-${fingerprint}`], meta: { seat: fingerprint }, verified: false });
  return { store, clock, call, register, disconnects, errors, changes: () => changes };
}

describe("the admin API", () => {
  it("answers 404 and 405 with a JSON error, and the methods of the path", async () => {
    const { call } = harness();
    expect(await call("GET", "/admin/unknown")).toMatchObject({ status: 404, body: { error: "not found" } });
    const refused = await call("PUT", "/admin/bans");
    expect(refused).toMatchObject({ status: 405, body: { error: "method not allowed" } });
    expect(refused.answer.allow).toBe("GET, POST");
  });

  it("GET /admin/stats passes detail=peers on", async () => {
    const { call } = harness();
    expect((await call("GET", "/admin/stats?detail=peers")).body).toEqual({ peers: true });
    expect((await call("GET", "/admin/stats")).body).toEqual({ peers: false });
  });

  it("lists namespaces with their counts, and a namespace's members a page at a time", async () => {
    const { store, call, register } = harness();
    for (const fingerprint of ["a", "b", "c"]) {
      await register(fingerprint);
      await store.joinNamespace("lobby", fingerprint, { appType: "game", meta: undefined, listLimit: 0 });
    }
    expect((await call("GET", "/admin/namespaces")).body).toEqual({ total_peers: 3, namespaces: { lobby: 3 } });
    expect(await call("GET", "/admin/namespaces/lobby?limit=2&offset=1")).toEqual(
      expect.objectContaining({
        status: 200,
        body: {
          namespace: "lobby",
          total: 3,
          offset: 1,
          limit: 2,
          members: [
            { fingerprint: "b", alias: "alias-b", app_type: "game", meta: { seat: "b" }, verified: false },
            { fingerprint: "c", alias: "alias-c", app_type: "game", meta: { seat: "c" }, verified: false },
          ],
        },
      }),
    );
    expect((await call("GET", "/admin/namespaces/lobby")).body).toMatchObject({ offset: 0, limit: 100, total: 3 });
    expect(await call("GET", "/admin/namespaces/nowhere")).toMatchObject({ status: 404, body: { error: "no such namespace" } });
  });

  it.each(["limit=0", "limit=1001", "limit=abc", "limit=-1", "offset=-1", "offset=1.5", "limit="])("a page with %s is 400", async (query) => {
    const { store, call, register } = harness();
    await register("a");
    await store.joinNamespace("lobby", "a", { appType: "", meta: undefined, listLimit: 0 });
    const answer = await call("GET", `/admin/namespaces/lobby?${query}`);
    expect(answer.status).toBe(400);
    expect(String(answer.body["error"])).toMatch(/limit|offset/);
  });

  it("shows a room and its members to the operator; a room is no namespace, a namespace no room", async () => {
    const { store, call, register } = harness();
    await register("owner");
    await register("guest");
    await store.createRoom("secret", "owner", 4);
    await store.joinRoom("secret", "guest", 0);
    await store.joinNamespace("lobby", "owner", { appType: "", meta: undefined, listLimit: 0 });
    expect((await call("GET", "/admin/rooms/secret?limit=1&offset=1")).body).toEqual({
      room_id: "secret",
      peer_count: 2,
      max_size: 4,
      owner: "owner",
      total: 2,
      offset: 1,
      limit: 1,
      members: [{ fingerprint: "guest", alias: "alias-guest", app_type: "", meta: { seat: "guest" }, verified: false }],
    });
    expect((await call("GET", "/admin/namespaces/secret")).status).toBe(404);
    expect(await call("GET", "/admin/rooms/lobby")).toMatchObject({ status: 404, body: { error: "no such room" } });
  });

  it("describes a peer, and 404 for one that is not registered", async () => {
    const { store, call, register } = harness();
    await register("a", "node-7");
    await store.joinNamespace("lobby", "a", { appType: "chat", meta: undefined, listLimit: 0 });
    expect((await call("GET", "/admin/peers/a")).body).toEqual({
      fingerprint: "a",
      alias: "alias-a",
      node_id: "node-7",
      connection_id: "conn-a",
      meta: { seat: "a" },
      verified: false,
      scopes: [{ name: "lobby", room: false, app_type: "chat" }],
    });
    expect(await call("GET", "/admin/peers/nobody")).toMatchObject({ status: 404, body: { error: "peer is not registered" } });
  });

  it("disconnects a peer with an optional reason; 404 for one that is not registered, 400 for a bad body", async () => {
    const { call, register, disconnects } = harness();
    await register("a");
    expect(await call("POST", "/admin/peers/a/disconnect", { reason: "flooding" })).toMatchObject({
      status: 200,
      body: { fingerprint: "a", alias: "alias-a", node_id: "node-1", disconnected: true },
    });
    expect((await call("POST", "/admin/peers/a/disconnect")).status).toBe(200);
    expect(disconnects).toEqual([
      ["a", "flooding"],
      ["a", ""],
    ]);
    expect(await call("POST", "/admin/peers/nobody/disconnect")).toMatchObject({ status: 404 });
    expect((await call("POST", "/admin/peers/a/disconnect", { reason: 5 })).status).toBe(400);
    expect((await call("POST", "/admin/peers/a/disconnect", { reason: "x".repeat(201) })).status).toBe(400);
    expect((await call("POST", "/admin/peers/a/disconnect", { why: "x" })).body).toEqual({ error: 'unknown field "why"; known: reason' });
  });

  it("makes a ban (201, every process told), lists it, lifts it (204, told again), then 404", async () => {
    const { call, clock, changes } = harness();
    const made = await call("POST", "/admin/bans", { ip: "::ffff:127.0.0.2", duration: "10m", reason: "scanner" });
    expect(made).toMatchObject({
      status: 201,
      body: { id: "ban-1", ip: "127.0.0.2", reason: "scanner", created_at: "2030-01-01T00:00:00.000Z", expires_at: "2030-01-01T00:10:00.000Z", disconnected: 2 },
    });
    expect(changes()).toBe(1);
    clock.now += 1;
    const second = await call("POST", "/admin/bans", { fingerprint: "f".repeat(64), duration: 3_600_000 });
    expect(second.body).toMatchObject({ id: "ban-2", fingerprint: "f".repeat(64), reason: "", expires_at: "2030-01-01T01:00:00.001Z" });
    expect((await call("GET", "/admin/bans")).body["bans"]).toEqual([
      { id: "ban-1", ip: "127.0.0.2", reason: "scanner", created_at: "2030-01-01T00:00:00.000Z", expires_at: "2030-01-01T00:10:00.000Z" },
      { id: "ban-2", fingerprint: "f".repeat(64), reason: "", created_at: "2030-01-01T00:00:00.001Z", expires_at: "2030-01-01T01:00:00.001Z" },
    ]);
    expect(await call("DELETE", "/admin/bans/ban-2")).toMatchObject({ status: 204, answer: { body: "" } });
    expect(changes()).toBe(3);
    expect(await call("DELETE", "/admin/bans/ban-2")).toMatchObject({ status: 404, body: { error: "no such ban" } });
    expect(changes()).toBe(3);
  });

  it("a ban expires by the clock: no longer listed, no longer liftable", async () => {
    const { call, clock } = harness();
    await call("POST", "/admin/bans", { ip: "10.0.0.1", duration: "1m" });
    clock.now += 59_999;
    expect((await call("GET", "/admin/bans")).body["bans"]).toHaveLength(1);
    clock.now += 1;
    expect((await call("GET", "/admin/bans")).body["bans"]).toEqual([]);
    expect((await call("DELETE", "/admin/bans/ban-1")).status).toBe(404);
  });

  it.each<[string, unknown]>([
    ["a body that is not JSON", "{"],
    ["a body that is not an object", "[1]"],
    ["no body", ""],
    ["an unknown field", { ip: "10.0.0.1", duration: "1m", note: "x" }],
    ["both a fingerprint and an ip", { ip: "10.0.0.1", fingerprint: "abc", duration: "1m" }],
    ["neither a fingerprint nor an ip", { duration: "1m" }],
    ["an ip that is no address", { ip: "example.com", duration: "1m" }],
    ["an ip that is a number", { ip: 127, duration: "1m" }],
    ["an empty fingerprint", { fingerprint: "", duration: "1m" }],
    ["a fingerprint with a space", { fingerprint: "a b", duration: "1m" }],
    ["a fingerprint that is too long", { fingerprint: "a".repeat(257), duration: "1m" }],
    ["no duration", { ip: "10.0.0.1" }],
    ["a duration that is no duration", { ip: "10.0.0.1", duration: "soon" }],
    ["a duration under a second", { ip: "10.0.0.1", duration: "999ms" }],
    ["a duration over a year", { ip: "10.0.0.1", duration: "8761h" }],
    ["a reason that is not a string", { ip: "10.0.0.1", duration: "1m", reason: ["x"] }],
    ["a __proto__ field", '{"__proto__": {"x": 1}, "ip": "10.0.0.1", "duration": "1m"}'],
  ])("refuses a ban with %s: 400 and nothing stored", async (_name, body) => {
    const { call, changes } = harness();
    const answer = await call("POST", "/admin/bans", body);
    expect(answer.status).toBe(400);
    expect(typeof answer.body["error"]).toBe("string");
    expect((await call("GET", "/admin/bans")).body["bans"]).toEqual([]);
    expect(changes()).toBe(0);
  });

  it(`refuses a ban past ${MAX_BANS} in force with 409`, async () => {
    const full = Array.from({ length: MAX_BANS }, (_, index) => ({ id: `b${index}`, kind: "ip" as const, value: "10.0.0.1", reason: "", createdAt: 0, expiresAt: 1 }));
    const { call } = harness({ listBans: async () => full });
    expect((await call("POST", "/admin/bans", { ip: "10.0.0.2", duration: "1m" })).status).toBe(409);
  });

  it("answers a backend's refusal with its code, and anything else with 500, told to onError", async () => {
    const down = harness({ namespaces: () => Promise.reject(new ProtocolError(503, "state backend unavailable")) });
    expect(await down.call("GET", "/admin/namespaces")).toMatchObject({ status: 503, body: { error: "state backend unavailable" } });
    expect(down.errors).toEqual([]);
    const broken = harness({ listBans: () => Promise.reject(new TypeError("bug")) });
    expect(await broken.call("GET", "/admin/bans")).toMatchObject({ status: 500, body: { error: "internal error" } });
    expect(broken.errors).toHaveLength(1);
  });
});
