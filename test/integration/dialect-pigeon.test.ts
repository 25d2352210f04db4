import { randomBytes } from "node:crypto";
import { isDeepStrictEqual } from "node:util";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { DIALECT_TOPOLOGIES, DialectClient, RefusedUpgrade, placeApart, type DialectDeployment } from "../helpers/dialect-client.ts";
import { connectWs, type TestPeer } from "../helpers/peers.ts";
import { unique } from "../helpers/redis-nodes.ts";
import { getJson, startServer, type ServerProcess } from "../helpers/server-process.ts";
import { waitFor } from "../helpers/wait.ts";

/**
 * The PeerPigeon dialect (docs/dialects/pigeon.md) with frames exactly as its clients send them,
 * in every topology: one process, two workers (peers placed on different workers), two nodes on
 * Redis (one peer on each).
 */

type Frame = Record<string, unknown>;

/** Every type a PeerPigeon client may receive. */
const VOCABULARY = new Set(["connected", "peer-discovered", "peer-disconnected", "offer", "answer", "ice-candidate", "pong", "error"]);
const CORS_ORIGIN = "https://pigeon.example.test";
const HUB_MESH = "pigeonhub-mesh";
const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;

const newPeerId = (): string => randomBytes(20).toString("hex");
const network = (): string => unique("net");

/** A PeerPigeon client and its peerId. */
interface Pigeon {
  readonly client: DialectClient;
  readonly peerId: string;
}

const opened: DialectClient[] = [];
const natives: TestPeer[] = [];

afterEach(async () => {
  const clients = opened.splice(0);
  for (const client of clients) {
    // Whatever a test did, a PeerPigeon client never heard another vocabulary.
    expect(client.received.filter((frame) => !VOCABULARY.has(String(frame["type"])))).toEqual([]);
    client.close();
  }
  for (const peer of natives.splice(0)) peer.close();
  await Promise.all(clients.map((client) => client.closed));
});

const pigeonUrl = (server: ServerProcess, query: string, path = "/pigeon"): string => `${server.http.replace(/^http/, "ws")}${path}?${query}`;

/** Opens a PeerPigeon connection and waits for its `connected`. */
async function connect(server: ServerProcess, options: { peerId?: string; path?: string; query?: string; headers?: Record<string, string> } = {}): Promise<Pigeon> {
  const peerId = options.peerId ?? newPeerId();
  const client = await DialectClient.open(pigeonUrl(server, `peerId=${peerId}${options.query ?? ""}`, options.path), { headers: options.headers ?? {} });
  opened.push(client);
  await client.nextOfType("connected");
  return { client, peerId };
}

/** Sends a frame, then a ping, and waits for the pong: everything before it has been handled. */
async function sendSettled(pigeon: Pigeon, frame: Frame): Promise<void> {
  const from = pigeon.client.received.length;
  pigeon.client.send(frame);
  pigeon.client.send({ type: "ping" });
  await pigeon.client.nextOfType("pong", 5_000, from);
}

/** `announce` as the Go client writes it (networkName given), settled. */
const announce = (pigeon: Pigeon, networkName: string, data: Frame = {}): Promise<void> => sendSettled(pigeon, { type: "announce", networkName, data });

const isDiscovery = (peerId: string, networkName?: string) => (frame: Frame): boolean =>
  frame["type"] === "peer-discovered" && (frame["data"] as Frame)["peerId"] === peerId && (networkName === undefined || frame["networkName"] === networkName);
const isDeparture = (peerId: string, networkName?: string) => (frame: Frame): boolean =>
  frame["type"] === "peer-disconnected" && (frame["data"] as Frame)["peerId"] === peerId && (networkName === undefined || frame["networkName"] === networkName);
const hasData = (type: string, data: Frame) => (frame: Frame): boolean => frame["type"] === type && isDeepStrictEqual(frame["data"], data);

/** True if nothing matching arrives within `ms` (bounded wait for an absence; prefer a later marker). */
async function nothing(pigeon: Pigeon, match: (frame: Frame) => boolean, ms = 250): Promise<boolean> {
  try {
    await pigeon.client.next(match, ms);
    return false;
  } catch {
    return true;
  }
}

describe.each(DIALECT_TOPOLOGIES)("PeerPigeon dialect, $name", (topology) => {
  let deployment: DialectDeployment;
  let left: ServerProcess;
  let right: ServerProcess;

  beforeAll(async () => {
    deployment = await topology.start({ pigeon_cors_origin: CORS_ORIGIN });
    [left, right] = deployment.sides;
  }, 60_000);
  afterAll(async () => deployment?.stop());

  /** A client on the right side, on another worker than `other` in a cluster. */
  async function apart(other: Pigeon, options: { path?: string } = {}): Promise<Pigeon> {
    const ids = new Map<DialectClient, string>();
    const client = await placeApart(deployment, `pigeon:${other.peerId}`, async () => {
      const pigeon = await connect(right, options);
      ids.set(pigeon.client, pigeon.peerId);
      return { client: pigeon.client, identity: `pigeon:${pigeon.peerId}` };
    });
    return { client, peerId: ids.get(client) as string };
  }

  // First, while this deployment has no other peers: the counts are exact.
  it("HTTP endpoints answer the originals' shapes with the whole deployment's counts, from either side", async () => {
    const net = network();
    const a = await connect(left);
    const b = await apart(a);
    const hub = await connect(left);
    const idle = await connect(right);
    await announce(a, net);
    await announce(b, net, { info: "b" });
    await announce(hub, HUB_MESH, { region: "eu", capabilities: ["signaling"] });
    await sendSettled(idle, { type: "ping" });

    for (const side of [left, right]) {
      // Clients placeApart closed on the way may still be leaving.
      await waitFor(
        async () => (await getJson(`${side.http}/pigeon/health`)).body,
        (body) => body["connections"] === 4 && body["peers"] === 4,
        { timeoutMs: 5_000, what: "the four clients to be counted" },
      );
      const health = await fetch(`${side.http}/pigeon/health`);
      expect(health.status).toBe(200);
      expect(health.headers.get("access-control-allow-origin")).toBe(CORS_ORIGIN);
      expect(await health.json()).toEqual({
        status: "healthy",
        timestamp: expect.stringMatching(RFC3339),
        uptime: expect.any(Number),
        isHub: false,
        connections: 4,
        peers: 4,
        hubs: 1,
        networks: 2,
      });

      const stats = await fetch(`${side.http}/pigeon/stats`);
      expect(stats.headers.get("access-control-allow-origin")).toBe(CORS_ORIGIN);
      expect(await stats.json()).toEqual({
        isRunning: true,
        isHub: false,
        hubPeerId: "",
        hubMeshNamespace: HUB_MESH,
        connections: 4,
        peers: 4,
        hubs: 1,
        networks: 2,
        bootstrapHubs: { total: 0, connected: 0 },
        maxConnections: expect.any(Number),
        uptime: expect.any(Number),
        host: "127.0.0.1",
        port: side.port,
      });

      const hubRecord = { PeerId: hub.peerId, RegisteredAt: expect.any(Number), LastActivity: expect.any(Number), NetworkName: HUB_MESH, Data: { region: "eu", capabilities: ["signaling"] } };
      const hubs = await fetch(`${side.http}/pigeon/hubs`);
      expect(hubs.headers.get("access-control-allow-origin")).toBe(CORS_ORIGIN);
      const hubsBody = (await hubs.json()) as Frame;
      expect(hubsBody).toEqual({ timestamp: expect.stringMatching(RFC3339), totalHubs: 1, hubs: [hubRecord] });
      expect(((hubsBody["hubs"] as Frame[])[0] as Frame)["RegisteredAt"]).toBeGreaterThan(Date.now() - 60_000);

      const hubstats = await fetch(`${side.http}/pigeon/hubstats`);
      expect(hubstats.headers.get("access-control-allow-origin")).toBe(CORS_ORIGIN);
      expect(await hubstats.json()).toEqual({ totalHubs: 1, connectedHubs: 1, hubs: [hubRecord], bootstrapHubs: [] });

      const metrics = await fetch(`${side.http}/pigeon/metrics`);
      expect(metrics.headers.get("access-control-allow-origin")).toBe(CORS_ORIGIN);
      expect(await metrics.json()).toEqual({
        timestamp: expect.stringMatching(RFC3339),
        uptime_ms: expect.any(Number),
        server: { is_hub: false, namespace: HUB_MESH, region: "", app_name: "peer-server" },
        connections: { active: 4, max: expect.any(Number) },
        peers: { total: 4, networks: { [net]: 2, [HUB_MESH]: 1 } },
        hubs: { discovered: 1, bootstrap_connected: 0 },
        networks: 2,
      });
    }

    // The figures follow departures, wherever the peer was.
    b.client.close();
    await b.client.closed;
    for (const side of [left, right]) {
      await waitFor(
        async () => (await getJson(`${side.http}/pigeon/metrics`)).body,
        (body) => isDeepStrictEqual(body["peers"], { total: 3, networks: { [net]: 1, [HUB_MESH]: 1 } }),
        { timeoutMs: 5_000, what: "the departure to be counted" },
      );
    }
  });

  it("greets with connected, and the JS client's announce (no networkName) joins global: both discover each other, either order", async () => {
    const a = await connect(left);
    expect(a.client.received[0]).toEqual({ type: "connected", data: { peerId: a.peerId }, fromPeerId: "system", networkName: "global", timestamp: expect.any(Number) });
    // `/pigeon/ws` is the same world as `/pigeon`.
    const b = await apart(a, { path: "/pigeon/ws" });
    await sendSettled(a, { type: "announce", data: { peerId: a.peerId }, maxPeers: 10 });
    b.client.send({ type: "announce", data: { peerId: b.peerId }, maxPeers: 10 });
    expect(await b.client.next(isDiscovery(a.peerId))).toEqual({
      type: "peer-discovered",
      data: { peerId: a.peerId, isHub: false },
      fromPeerId: "system",
      targetPeerId: b.peerId,
      networkName: "global",
      timestamp: expect.any(Number),
    });
    expect(await a.client.next(isDiscovery(b.peerId))).toEqual({
      type: "peer-discovered",
      data: { peerId: b.peerId, isHub: false },
      fromPeerId: "system",
      targetPeerId: a.peerId,
      networkName: "global",
      timestamp: expect.any(Number),
    });

    // The other order: the right side first; announce data travels, but peerId and isHub are the server's.
    const net = network();
    await announce(b, net, { info: "from b", peerId: "spoofed", isHub: "yes" });
    a.client.send({ type: "announce", networkName: net, data: { peerId: a.peerId, nested: { list: [1, "二", null] } } });
    expect((await a.client.next(isDiscovery(b.peerId, net)))["data"]).toEqual({ info: "from b", peerId: b.peerId, isHub: false });
    expect(await b.client.next(isDiscovery(a.peerId, net))).toMatchObject({
      data: { peerId: a.peerId, isHub: false, nested: { list: [1, "二", null] } },
      targetPeerId: b.peerId,
      networkName: net,
    });
    await sendSettled(a, { type: "ping" });
    await sendSettled(b, { type: "ping" });
    expect(a.client.received.filter(isDiscovery(b.peerId, net))).toHaveLength(1);
    expect(b.client.received.filter(isDiscovery(a.peerId, net))).toHaveLength(1);
  });

  it("offer, answer and ice-candidate cross sides with data untouched and the sender's own fromPeerId; nobody else hears them", async () => {
    const net = network();
    const a = await connect(left);
    const b = await apart(a);
    const bystander = await connect(right);
    await announce(a, net);
    await announce(b, net);
    await announce(bystander, net);
    const offer = { type: "offer", sdp: "v=0\r\no=- 46117 2 IN IP4 127.0.0.1\r\n", extra: { "ключ": ["🔑", 1.5, false, null] } };
    a.client.send({ type: "offer", targetPeerId: b.peerId, networkName: net, fromPeerId: newPeerId(), data: offer });
    expect(await b.client.next(hasData("offer", offer))).toEqual({
      type: "offer",
      data: offer,
      fromPeerId: a.peerId,
      targetPeerId: b.peerId,
      networkName: net,
      timestamp: expect.any(Number),
    });
    const answer = { type: "answer", sdp: "v=0\r\n" };
    b.client.send({ type: "answer", targetPeerId: a.peerId, networkName: net, data: answer });
    expect(await a.client.next(hasData("answer", answer))).toMatchObject({ fromPeerId: b.peerId, targetPeerId: a.peerId, networkName: net });
    const candidate = { candidate: "candidate:1 1 udp 2122260223 192.0.2.1 54400 typ host", sdpMid: "0", sdpMLineIndex: 0 };
    // A client that leaves out networkName is still in its network.
    a.client.send({ type: "ice-candidate", targetPeerId: b.peerId, data: candidate });
    expect(await b.client.next(hasData("ice-candidate", candidate))).toMatchObject({ fromPeerId: a.peerId, networkName: net });
    await sendSettled(bystander, { type: "ping" });
    expect(await nothing(bystander, (frame) => ["offer", "answer", "ice-candidate"].includes(String(frame["type"])))).toBe(true);
  });

  it("drops a signal silently to another network, to a peer that never announced, to an unknown peer and to oneself", async () => {
    const netA = network();
    const netB = network();
    const a = await connect(left);
    const b = await apart(a);
    await announce(a, netA);
    await announce(b, netB);
    // Naming the target's network does not help: the sender is not in it.
    a.client.send({ type: "offer", targetPeerId: b.peerId, networkName: netB, data: { leaked: "network" } });
    const silent = await connect(right);
    a.client.send({ type: "offer", targetPeerId: silent.peerId, networkName: netA, data: { leaked: "unannounced" } });
    a.client.send({ type: "offer", targetPeerId: newPeerId(), networkName: netA, data: { lost: true } });
    a.client.send({ type: "offer", targetPeerId: a.peerId, networkName: netA, data: { self: true } });
    await sendSettled(a, { type: "offer", targetPeerId: "not-a-peer-id", data: { lost: true } });
    // Markers: once both are in a's network, what a sends next arrives, and nothing before it did.
    await announce(b, netA);
    await announce(silent, netA);
    a.client.send({ type: "offer", targetPeerId: b.peerId, networkName: netA, data: { marker: 1 } });
    a.client.send({ type: "offer", targetPeerId: silent.peerId, networkName: netA, data: { marker: 2 } });
    await b.client.next(hasData("offer", { marker: 1 }));
    await silent.client.next(hasData("offer", { marker: 2 }));
    expect(b.client.ofType("offer")).toHaveLength(1);
    expect(silent.client.ofType("offer")).toHaveLength(1);
    await sendSettled(a, { type: "ping" });
    expect(a.client.ofType("offer")).toEqual([]);
    expect(a.client.ofType("error")).toEqual([]);
  });

  it("a re-announce into another network leaves the first: its peers are told peer-disconnected, and it hears nothing more of it", async () => {
    const first = network();
    const second = network();
    const a = await connect(left);
    const b = await apart(a);
    const c = await connect(right);
    await announce(a, first);
    await announce(b, first);
    await announce(c, second);
    await a.client.next(isDiscovery(b.peerId, first));

    await announce(a, second);
    expect(await b.client.next(isDeparture(a.peerId, first))).toEqual({
      type: "peer-disconnected",
      data: { peerId: a.peerId, isHub: false },
      fromPeerId: "system",
      targetPeerId: b.peerId,
      networkName: first,
      timestamp: expect.any(Number),
    });
    await a.client.next(isDiscovery(c.peerId, second));
    await c.client.next(isDiscovery(a.peerId, second));
    expect(a.client.received.filter(isDiscovery(b.peerId, second))).toEqual([]);

    // Later arrivals in the first network are no news to a, and b can no longer signal it.
    const d = await connect(left);
    await announce(d, first);
    await b.client.next(isDiscovery(d.peerId, first));
    b.client.send({ type: "offer", targetPeerId: a.peerId, networkName: first, data: { stale: true } });
    c.client.send({ type: "offer", targetPeerId: a.peerId, networkName: second, data: { marker: true } });
    await a.client.next(hasData("offer", { marker: true }));
    d.client.close();
    await b.client.next(isDeparture(d.peerId, first));
    await sendSettled(a, { type: "ping" });
    expect(a.client.received.filter((frame) => isDiscovery(d.peerId)(frame) || isDeparture(d.peerId)(frame) || isDeparture(b.peerId)(frame))).toEqual([]);
    expect(a.client.received.filter(hasData("offer", { stale: true }))).toEqual([]);
  });

  it("goodbye leaves the network (its peers get peer-disconnected) and a later announce works again", async () => {
    const net = network();
    const a = await connect(left);
    const b = await apart(a);
    await announce(a, net);
    await announce(b, net);
    await a.client.next(isDiscovery(b.peerId, net));

    await sendSettled(a, { type: "goodbye", networkName: net, data: { peerId: a.peerId } });
    expect(await b.client.next(isDeparture(a.peerId, net))).toMatchObject({ data: { peerId: a.peerId, isHub: false }, fromPeerId: "system", targetPeerId: b.peerId });
    expect(b.client.ofType("goodbye")).toEqual([]);
    // Out of the network: not reachable, but still connected.
    await sendSettled(b, { type: "offer", targetPeerId: a.peerId, networkName: net, data: { early: true } });

    const from = a.client.received.length;
    const bFrom = b.client.received.length;
    await announce(a, net);
    expect(await a.client.next(isDiscovery(b.peerId, net), 5_000, from)).toMatchObject({ targetPeerId: a.peerId });
    await b.client.next(isDiscovery(a.peerId, net), 5_000, bFrom);
    b.client.send({ type: "offer", targetPeerId: a.peerId, networkName: net, data: { again: true } });
    await a.client.next(hasData("offer", { again: true }));
    expect(a.client.received.filter(hasData("offer", { early: true }))).toEqual([]);
  });

  it("the same peerId twice: the newer connection replaces the older, and exactly one works", async () => {
    const net = network();
    const peerId = newPeerId();
    const older = await connect(left, { peerId });
    const b = await apart(older);
    await announce(older, net);
    await announce(b, net);
    await b.client.next(isDiscovery(peerId, net));

    const newer = await connect(right, { peerId });
    expect(await older.client.closed).toBe(4001);
    expect(older.client.ofType("error")).toEqual([expect.objectContaining({ error: expect.stringContaining("replaced"), fromPeerId: "system" })]);
    await b.client.next(isDeparture(peerId, net));

    const bFrom = b.client.received.length;
    await announce(newer, net);
    await newer.client.next(isDiscovery(b.peerId, net));
    await b.client.next(isDiscovery(peerId, net), 5_000, bFrom);
    b.client.send({ type: "offer", targetPeerId: peerId, networkName: net, data: { to: "newer" } });
    await newer.client.next(hasData("offer", { to: "newer" }));
    newer.client.send({ type: "answer", targetPeerId: b.peerId, networkName: net, data: { from: "newer" } });
    expect(await b.client.next(hasData("answer", { from: "newer" }))).toMatchObject({ fromPeerId: peerId });
    expect(older.client.ofType("offer")).toEqual([]);
  });

  it("a disconnect is told to the peers of that network only, with whether it was a hub", async () => {
    const net = network();
    const elsewhere = network();
    const a = await connect(left);
    const b = await apart(a);
    const hub = await connect(left);
    const c = await connect(right);
    await announce(a, net);
    await announce(hub, net, { isHub: true });
    await announce(b, net);
    await announce(c, elsewhere);
    expect((await b.client.next(isDiscovery(hub.peerId, net)))["data"]).toEqual({ peerId: hub.peerId, isHub: true });

    a.client.close();
    hub.client.close();
    expect(await b.client.next(isDeparture(a.peerId, net))).toEqual({
      type: "peer-disconnected",
      data: { peerId: a.peerId, isHub: false },
      fromPeerId: "system",
      targetPeerId: b.peerId,
      networkName: net,
      timestamp: expect.any(Number),
    });
    expect((await b.client.next(isDeparture(hub.peerId, net)))["data"]).toEqual({ peerId: hub.peerId, isHub: true });
    // A marker in c's network: the departures, sent before, never reached it.
    const d = await connect(left);
    await announce(d, elsewhere);
    await c.client.next(isDiscovery(d.peerId, elsewhere));
    expect(c.client.ofType("peer-disconnected")).toEqual([]);
  });

  it("a hub-mesh announce makes a hub with no extra powers: it neither hears other networks nor injects discoveries", async () => {
    const net = network();
    const hub = await connect(left);
    const a = await connect(left);
    const b = await apart(a);
    await announce(hub, HUB_MESH);
    await announce(a, net);
    // What hubs told each other in the originals is ignored here.
    await sendSettled(hub, { type: "peer-discovered", networkName: net, data: { peerId: newPeerId(), isHub: false } });
    await sendSettled(hub, { type: "offer", targetPeerId: a.peerId, networkName: net, data: { relayed: true } });
    await announce(b, net);
    await a.client.next(isDiscovery(b.peerId, net));
    await sendSettled(a, { type: "ping" });
    expect(a.client.ofType("peer-discovered")).toHaveLength(1);
    expect(a.client.ofType("offer")).toEqual([]);
    expect(hub.client.ofType("peer-discovered")).toEqual([]);
    expect(hub.client.ofType("error")).toEqual([]);
  });

  it("a /ws namespace and a PeerPigeon network of the same name never meet, and neither vocabulary crosses", async () => {
    const native = await connectWs(left.ws);
    natives.push(native);
    expect((await native.register()).type).toBe("registered");
    expect((await native.join("global")).type).toBe("peer_list");
    const a = await connect(left);
    const b = await apart(a);
    await sendSettled(a, { type: "announce", data: { peerId: a.peerId } });
    await sendSettled(b, { type: "announce", data: { peerId: b.peerId } });
    await a.client.next(isDiscovery(b.peerId, "global"));

    // The native peer sees nobody of the network, cannot join it, and cannot signal into it.
    const listed = await native.request("discover", { payload: { namespace: "global" } }, ["peer_list"]);
    expect(listed.payload?.["peers"]).toEqual([expect.objectContaining({ fingerprint: native.fingerprint })]);
    expect((await native.request("join", { payload: { namespace: "pigeon/global" } }, ["peer_list"])).payload).toMatchObject({ code: 400 });
    const refused = await native.request("signal", { to: `pigeon:${a.peerId}`, payload: { sdp: "native" } }, ["ok"]);
    expect(refused.payload).toMatchObject({ code: 403 });
    expect(await native.nothing((message) => message.type === "peer_joined" || message.type === "peer_left", 250)).toBe(true);

    // Nor do the PeerPigeon peers hear of it, even when it leaves.
    native.close();
    await native.closed;
    b.client.send({ type: "offer", targetPeerId: a.peerId, data: { marker: true } });
    await a.client.next(hasData("offer", { marker: true }));
    for (const pigeon of [a, b]) {
      const others = pigeon.client.received.filter((frame) => frame["type"] === "peer-discovered" || frame["type"] === "peer-disconnected");
      for (const frame of others) expect(JSON.stringify(frame)).not.toContain(native.fingerprint);
    }
    expect(a.client.ofType("offer")).toHaveLength(1);
  });
});

describe("PeerPigeon dialect, one process with a shared token", () => {
  const TOKEN = `tok-${randomBytes(12).toString("hex")}`;
  let server: ServerProcess;
  const bearer = { authorization: `Bearer ${TOKEN}` };

  beforeAll(async () => {
    // A slow message rate (one a second after a burst of ten) that no other test here comes near.
    server = await startServer({ config: { pigeon_auth_token: TOKEN, max_json_depth: 8, rate_limit_per_sec: 1, rate_limit_burst: 10 } });
  }, 60_000);
  afterAll(async () => server?.stop());

  const refusal = async (url: string, headers: Record<string, string> = {}): Promise<number> => {
    try {
      const client = await DialectClient.open(url, { headers });
      client.close();
      return 101;
    } catch (error) {
      if (error instanceof RefusedUpgrade) return error.status;
      throw error;
    }
  };

  it("refuses an upgrade without the token, or with a wrong one, with 401; accepts a Bearer header or ?token=", async () => {
    const peerId = newPeerId();
    expect(await refusal(pigeonUrl(server, `peerId=${peerId}`))).toBe(401);
    expect(await refusal(pigeonUrl(server, `peerId=${peerId}&token=wrong`))).toBe(401);
    expect(await refusal(pigeonUrl(server, `peerId=${peerId}&token=${TOKEN}x`))).toBe(401);
    expect(await refusal(pigeonUrl(server, `peerId=${peerId}`), { authorization: "Bearer wrong" })).toBe(401);
    expect(await refusal(pigeonUrl(server, `peerId=${peerId}`), { authorization: TOKEN })).toBe(401);
    expect(await refusal(pigeonUrl(server, `peerId=${peerId}`, "/pigeon/ws"))).toBe(401);

    const byHeader = await connect(server, { headers: bearer });
    const byQuery = await connect(server, { query: `&token=${encodeURIComponent(TOKEN)}`, path: "/pigeon/ws" });
    const net = network();
    await announce(byHeader, net);
    await announce(byQuery, net);
    await byHeader.client.next(isDiscovery(byQuery.peerId, net));
  });

  it.each([
    ["missing", ""],
    ["39 hex characters", `peerId=${"a".repeat(39)}`],
    ["41 hex characters", `peerId=${"a".repeat(41)}`],
    ["not hex", `peerId=${"g".repeat(40)}`],
    ["a 64-hex fingerprint", `peerId=${"ab".repeat(32)}`],
    ["empty", "peerId="],
  ])("refuses a peerId that is %s with 403 before the upgrade, on both paths", async (_label, query) => {
    for (const path of ["/pigeon", "/pigeon/ws"]) {
      expect(await refusal(pigeonUrl(server, `${query}&token=${TOKEN}`, path))).toBe(403);
    }
  });

  it("keeps the case of a peerId: upper and lower case are two peers", async () => {
    const lower = newPeerId();
    const upper = lower.toUpperCase();
    const net = network();
    const a = await connect(server, { peerId: lower, headers: bearer });
    const b = await connect(server, { peerId: upper, headers: bearer });
    expect(b.client.received[0]).toMatchObject({ type: "connected", data: { peerId: upper } });
    await announce(a, net);
    await announce(b, net);
    await a.client.next(isDiscovery(upper, net));
    a.client.send({ type: "offer", targetPeerId: upper, data: { hi: "upper" } });
    expect(await b.client.next(hasData("offer", { hi: "upper" }))).toMatchObject({ fromPeerId: lower, targetPeerId: upper });
  });

  it("answers ping with pong, also before announce", async () => {
    const a = await connect(server, { headers: bearer });
    a.client.send({ type: "ping" });
    expect(await a.client.nextOfType("pong")).toEqual({
      type: "pong",
      data: { timestamp: expect.any(Number) },
      fromPeerId: "system",
      targetPeerId: a.peerId,
      networkName: "global",
      timestamp: expect.any(Number),
    });
    const net = network();
    await announce(a, net);
    a.client.send({ type: "ping" });
    expect(await a.client.next((frame) => frame["type"] === "pong" && frame["networkName"] === net)).toMatchObject({ targetPeerId: a.peerId });
  });

  it.each([
    ["invalid JSON", "{not json", "invalid JSON"],
    ["a JSON array", "[1,2]", "JSON object"],
    ["no type", JSON.stringify({ data: {} }), "type"],
    ["an unknown type", JSON.stringify({ type: "chat", data: { text: "hi" } }), "does not route 'chat'"],
    ["a type named like a prototype member", JSON.stringify({ type: "__proto__" }), "does not route '__proto__'"],
    ["a frame nested past max_json_depth", JSON.stringify({ type: "offer", data: JSON.parse("[".repeat(12) + "]".repeat(12)) as unknown }), "nest"],
    ["an invalid networkName", JSON.stringify({ type: "announce", networkName: "has space/and slash", data: {} }), "networkName"],
    ["a networkName of 65 characters", JSON.stringify({ type: "announce", networkName: "n".repeat(65), data: {} }), "networkName"],
  ])("answers %s with an error frame and keeps the socket", async (_label, text, words) => {
    const a = await connect(server, { headers: bearer });
    a.client.send(text);
    const error = await a.client.nextOfType("error");
    expect(error).toMatchObject({ type: "error", error: expect.stringContaining(words), fromPeerId: "system", targetPeerId: a.peerId, timestamp: expect.any(Number) });
    await sendSettled(a, { type: "ping" });
  });

  it("answers a binary frame with an error frame and keeps the socket", async () => {
    const a = await connect(server, { headers: bearer });
    a.client.socket.send(Buffer.from(JSON.stringify({ type: "ping" })), { binary: true });
    expect(await a.client.nextOfType("error")).toMatchObject({ error: expect.stringContaining("binary") });
    await sendSettled(a, { type: "ping" });
  });

  it("announces data that is not an object, or over 4 KB, as {}; a network with letters of any script works", async () => {
    const net = `сеть_${randomBytes(4).toString("hex")}.v2:~@+`;
    const a = await connect(server, { headers: bearer });
    const b = await connect(server, { headers: bearer });
    const c = await connect(server, { headers: bearer });
    await announce(a, net, { blob: "x".repeat(5_000) });
    await sendSettled(b, { type: "announce", networkName: net, data: "not an object" });
    await sendSettled(c, { type: "announce", networkName: net });
    expect((await c.client.next(isDiscovery(a.peerId, net)))["data"]).toEqual({ peerId: a.peerId, isHub: false });
    expect((await c.client.next(isDiscovery(b.peerId, net)))["data"]).toEqual({ peerId: b.peerId, isHub: false });
  });

  it("tells a sender over its message rate (error) and drops the excess; an announce refused for it leaves the peer where it was", async () => {
    const net = network();
    const other = network();
    const a = await connect(server, { headers: bearer });
    const b = await connect(server, { headers: bearer });
    const c = await connect(server, { headers: bearer });
    await announce(a, net);
    await announce(b, net);
    await announce(c, other);
    for (let n = 0; n < 30; n++) a.client.send({ type: "offer", targetPeerId: b.peerId, data: { n } });
    a.client.send({ type: "announce", networkName: other, data: {} });
    await a.client.next((frame) => frame["type"] === "error" && String(frame["error"]).includes("rate limited"));
    // b's own budget is whole: its marker reaches a, which is still in its network.
    b.client.send({ type: "offer", targetPeerId: a.peerId, data: { marker: true } });
    expect(await a.client.next(hasData("offer", { marker: true }))).toMatchObject({ fromPeerId: b.peerId, networkName: net });
    const delivered = b.client.ofType("offer").map((frame) => (frame["data"] as Frame)["n"]);
    expect(delivered.length).toBeLessThan(30);
    expect(delivered).toEqual(delivered.map((_n, index) => index));
    await sendSettled(c, { type: "ping" });
    expect(c.client.received.filter(isDiscovery(a.peerId))).toEqual([]);
  });
});
