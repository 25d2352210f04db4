import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { NginxFront } from "../helpers/nginx.ts";
import { closeAll, connectSio, connectWs, type TestPeer } from "../helpers/peers.ts";
import { startNodes } from "../helpers/redis-nodes.ts";
import { startRedisServer, type RedisServer } from "../helpers/redis-server.ts";
import { getJson, startServer, type ServerProcess } from "../helpers/server-process.ts";
import { waitFor } from "../helpers/wait.ts";

/**
 * Per-address limits against real servers, with clients on distinct loopback addresses (Linux routes
 * all of 127.0.0.0/8 to the loopback): max_connections_per_ip and connection_rate_per_ip /
 * connection_burst_per_ip refuse new connections and Engine.IO sessions with HTTP 429 before the
 * upgrade or handshake, counted for the whole machine (a cluster's primary counts for its workers);
 * the client address behind trusted_proxies is X-Forwarded-For's rightmost untrusted entry, and a
 * header from an untrusted peer is ignored; registrations per address whatever the key
 * (registration_rate_per_ip / registration_burst_per_ip) get error 429, for the whole deployment.
 */

/** Loose limits for what a test does not look at. */
const LOOSE = { max_connections_per_ip: 10_000, connection_rate_per_ip: 10_000, connection_burst_per_ip: 10_000, registration_rate_per_ip: 10_000, registration_burst_per_ip: 10_000 };

interface Attempt {
  status: number | "open";
  socket: WebSocket | undefined;
}

/** Opens a WebSocket from `localAddress` (with extra headers) and keeps it open; or the HTTP status that refused it. */
function attempt(url: string, localAddress: string, headers: Record<string, string> = {}): Promise<Attempt> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { localAddress, headers });
    socket.once("open", () => resolve({ status: "open", socket }));
    socket.once("unexpected-response", (request, response) => {
      resolve({ status: response.statusCode ?? 0, socket: undefined });
      response.resume();
      request.destroy();
    });
    socket.once("error", reject);
  });
}

/** Closes a socket and resolves once the close handshake is done. */
const closeSocket = (socket: WebSocket | undefined): Promise<void> =>
  new Promise((resolve) => {
    if (socket === undefined || socket.readyState === WebSocket.CLOSED) return resolve();
    socket.once("close", () => resolve());
    socket.close();
  });

function tracking(): { sockets: WebSocket[]; peers: TestPeer[]; keep: (result: Attempt) => Attempt; closeAll: () => Promise<void> } {
  const sockets: WebSocket[] = [];
  const peers: TestPeer[] = [];
  return {
    sockets,
    peers,
    keep(result) {
      if (result.socket !== undefined) sockets.push(result.socket);
      return result;
    },
    async closeAll() {
      closeAll(peers.splice(0));
      await Promise.all(sockets.splice(0).map(closeSocket));
    },
  };
}

/** The count and the rate, from one address, on a deployment's one entry point. */
function connectionLimits(start: () => Promise<ServerProcess>, label: string): void {
  describe(`connections per address on ${label} (max 3; 4 at once, then 1 a second)`, () => {
    let server: ServerProcess;
    const open = tracking();
    beforeAll(async () => {
      server = await start();
    });
    afterEach(() => open.closeAll());
    afterAll(async () => {
      await server?.stop();
    });

    it("the 4th open connection of an address gets 429, WebSocket or Socket.IO; other addresses are apart; a close makes room", async () => {
      const address = "127.0.0.2";
      for (let i = 0; i < 2; i++) expect(open.keep(await attempt(server.ws, address)).status).toBe("open");
      // A long-polling session counts once, however many requests it makes.
      const polling = await connectSio(server.http, { transports: ["polling"], localAddress: address });
      open.peers.push(polling);
      expect((await polling.register()).type).toBe("registered");
      expect((await polling.request("ping", {})).type).toBe("pong");
      expect(open.keep(await attempt(server.ws, address)).status).toBe(429);
      await expect(connectSio(server.http, { localAddress: address })).rejects.toThrow();
      expect(open.keep(await attempt(server.ws, "127.0.0.3")).status).toBe("open");
      if (label.includes("cluster")) {
        // The three were spread over both workers: the count is the machine's, not a worker's.
        const stats = await getJson(`${server.http}/stats`);
        const workers = stats.body["workers"] as { connections: Record<string, number> }[];
        expect(workers.every((worker) => Object.values(worker.connections).reduce((sum, count) => sum + count, 0) > 0)).toBe(true);
      }
      await closeSocket(open.sockets[0]);
      const again = await waitFor(() => attempt(server.ws, address).then(open.keep), (result) => result.status === "open", { timeoutMs: 5_000, what: "the closed connection's count to be released" });
      expect(again.status).toBe("open");
    });

    it("new connections beyond the burst get 429 until the rate refills; refusals spend nothing", async () => {
      // An address of its own: its bucket is full.
      const address = "127.0.0.4";
      const statuses: (number | "open")[] = [];
      for (let i = 0; i < 4; i++) {
        const result = open.keep(await attempt(server.ws, address));
        statuses.push(result.status);
        await closeSocket(result.socket);
      }
      expect(statuses).toEqual(["open", "open", "open", "open"]);
      for (let i = 0; i < 3; i++) expect((await attempt(server.ws, address)).status).toBe(429);
      await new Promise((resolve) => setTimeout(resolve, 1_100));
      expect(open.keep(await attempt(server.ws, address)).status).toBe("open");
    });
  });
}

connectionLimits(() => startServer({ config: { ...LOOSE, max_connections_per_ip: 3, connection_rate_per_ip: 1, connection_burst_per_ip: 4 } }), "one process");
connectionLimits(
  () => startServer({ config: { ...LOOSE, max_connections_per_ip: 3, connection_rate_per_ip: 1, connection_burst_per_ip: 4 }, env: { PEER_WORKERS: "2" }, timeoutMs: 30_000 }),
  "a 2-worker cluster",
);

/** trusted_proxies: 127.0.0.1 is the proxy; clients are told apart by X-Forwarded-For. */
function trustedProxies(start: () => Promise<ServerProcess>, label: string): void {
  describe(`trusted_proxies on ${label} (max 2 connections per address)`, () => {
    let server: ServerProcess;
    const open = tracking();
    beforeAll(async () => {
      server = await start();
    });
    afterEach(() => open.closeAll());
    afterAll(async () => {
      await server?.stop();
    });

    it("behind a trusted proxy, each client is its X-Forwarded-For's rightmost untrusted entry", async () => {
      const via = (forwarded: string): Promise<Attempt> => attempt(server.ws, "127.0.0.1", { "x-forwarded-for": forwarded }).then(open.keep);
      expect((await via("203.0.113.5")).status).toBe("open");
      // What the client wrote itself stands left of what its proxy appended: ignored.
      expect((await via("198.51.100.77, 203.0.113.5")).status).toBe("open");
      expect((await via("198.51.100.78, 203.0.113.5")).status).toBe(429);
      expect((await via("203.0.113.6")).status).toBe("open");
      // The proxy's own connections without the header are its own address's.
      expect((await attempt(server.ws, "127.0.0.1").then(open.keep)).status).toBe("open");
      // The client address is what the log names.
      await waitFor(
        () => server.output.filter((line) => line.includes('"connection opened"') && line.includes('"address":"203.0.113.6"')).length,
        (count) => count === 1,
        { timeoutMs: 5_000, what: "the log line of 203.0.113.6's connection" },
      );
    });

    it("from an untrusted peer the header is ignored: a client cannot choose its address", async () => {
      const spoofed = (forwarded: string): Promise<Attempt> => attempt(server.ws, "127.0.0.7", { "x-forwarded-for": forwarded }).then(open.keep);
      expect((await spoofed("203.0.113.10")).status).toBe("open");
      expect((await spoofed("203.0.113.11")).status).toBe("open");
      expect((await spoofed("203.0.113.12")).status).toBe(429);
      const polling = await connectSio(server.http, { transports: ["polling"], localAddress: "127.0.0.7", extraHeaders: { "x-forwarded-for": "203.0.113.13" } }).catch(() => undefined);
      if (polling !== undefined) open.peers.push(polling);
      expect(polling).toBeUndefined();
    });
  });
}

trustedProxies(() => startServer({ config: { ...LOOSE, max_connections_per_ip: 2, trusted_proxies: ["127.0.0.1"] } }), "one process");
trustedProxies(() => startServer({ config: { ...LOOSE, max_connections_per_ip: 2, trusted_proxies: "127.0.0.1/32" }, env: { PEER_WORKERS: "2" }, timeoutMs: 30_000 }), "a 2-worker cluster");

/**
 * Connects `count` peers from `address` to the given entry points in turn (ws and Socket.IO by
 * turns), then registers a fresh key on each at once, well within one second (the limit's steady
 * rate); the replies' outcomes, sorted.
 */
async function registerFrom(entries: readonly ServerProcess[], address: string, count: number, peers: TestPeer[]): Promise<string[]> {
  const connected: TestPeer[] = [];
  for (let i = 0; i < count; i++) {
    const server = entries[i % entries.length] as ServerProcess;
    const peer = i % 2 === 0 ? await connectWs(server.ws, { localAddress: address }) : await connectSio(server.http, { localAddress: address });
    peers.push(peer);
    connected.push(peer);
  }
  const replies = await Promise.all(connected.map((peer, i) => peer.register({ publicKey: `key-${address}-${i}-${Date.now()}` })));
  return replies.map((reply) => (reply.type === "registered" ? "registered" : `${String(reply.payload?.["code"])} ${String(reply.payload?.["message"])}`)).sort();
}

const REFUSED = "429 too many registrations from this address";

describe("registrations per address (3 at once, then 1 a second), whatever the key", () => {
  const peers: TestPeer[] = [];
  afterEach(() => closeAll(peers.splice(0)));
  const limits = { ...LOOSE, registration_rate_per_ip: 1, registration_burst_per_ip: 3 };

  it("on one process and on a 2-worker cluster (counted by the primary)", async () => {
    const [single, cluster] = await Promise.all([startServer({ config: limits }), startServer({ config: limits, env: { PEER_WORKERS: "2" }, timeoutMs: 30_000 })]);
    try {
      for (const server of [single, cluster]) {
        expect(await registerFrom([server], "127.0.0.5", 4, peers)).toEqual([REFUSED, "registered", "registered", "registered"]);
        expect(await registerFrom([server], "127.0.0.6", 1, peers)).toEqual(["registered"]);
      }
    } finally {
      await Promise.all([single.stop(), cluster.stop()]);
    }
  });

  describe("on 2 Redis nodes", () => {
    let redis: RedisServer;
    let nodes: ServerProcess[] = [];
    beforeAll(async () => {
      redis = await startRedisServer();
      nodes = await startNodes(redis, [{ config: limits }, { config: limits }]);
    });
    afterAll(async () => {
      await Promise.all(nodes.map((node) => node.stop()));
      await redis?.stop();
    });

    it("the budget is the deployment's: registrations on both nodes share it", async () => {
      expect(await registerFrom(nodes, "127.0.0.8", 4, peers)).toEqual([REFUSED, "registered", "registered", "registered"]);
      expect(await registerFrom(nodes.slice(1), "127.0.0.9", 1, peers)).toEqual(["registered"]);
    });
  });
});

describe("behind real nginx (the project's config) with trusted_proxies, max 1 connection per address", () => {
  let server: ServerProcess;
  const proxy = new NginxFront();
  const open = tracking();
  beforeAll(async () => {
    server = await startServer({ config: { ...LOOSE, max_connections_per_ip: 1, trusted_proxies: "127.0.0.1" } });
    await proxy.start([server]);
  });
  afterEach(() => open.closeAll());
  afterAll(async () => {
    await proxy.stop();
    await server?.stop();
  });

  // nginx reaches the node from 127.0.0.1, the only trusted proxy; its clients come from other loopback addresses.
  it("counts each client by the address nginx saw, whatever X-Forwarded-For the client sends", async () => {
    const ws = proxy.get().ws;
    expect(open.keep(await attempt(ws, "127.0.0.21")).status).toBe("open");
    expect(open.keep(await attempt(ws, "127.0.0.22")).status).toBe("open");
    expect(open.keep(await attempt(ws, "127.0.0.21")).status).toBe(429);
    // Claiming another address in the header buys nothing: nginx appends the one it saw.
    expect(open.keep(await attempt(ws, "127.0.0.21", { "x-forwarded-for": "198.51.100.9" })).status).toBe(429);
    await waitFor(
      () => server.output.filter((line) => line.includes('"connection opened"') && line.includes('"address":"127.0.0.22"')).length,
      (count) => count === 1,
      { timeoutMs: 5_000, what: "the log line naming the client behind nginx" },
    );
  });
});
