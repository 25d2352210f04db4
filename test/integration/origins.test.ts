import { request as httpRequest } from "node:http";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { upgradeOutcome } from "../helpers/admin.ts";
import { closeAll, connectSio, type TestPeer } from "../helpers/peers.ts";
import { startServer, type ServerProcess } from "../helpers/server-process.ts";

/**
 * allowed_origins against real servers: a browser's WebSocket upgrade (/ws, a dialect's path,
 * Socket.IO's) or Socket.IO request (every long-polling request, not only the handshake) whose
 * Origin is not listed gets HTTP 403; a request without Origin (a non-browser client) passes; the
 * list drives Socket.IO's CORS answers and PeerPigeon's HTTP endpoints (pigeon_cors_origin unset).
 */

const APP = "https://app.example";
const FOREIGN = "https://evil.example";

/** The HTTP status of a WebSocket upgrade sent with `origin` (none: no Origin header), or "open". */
const upgradeWith = (url: string, origin?: string): Promise<number | "open"> => upgradeOutcome(url, origin === undefined ? {} : { origin });

/** A GET with an optional Origin: status, the CORS header and the body. */
function getWith(url: string, origin?: string): Promise<{ status: number; allowOrigin: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(url, { headers: origin === undefined ? {} : { origin } }, (response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => (body += chunk));
      response.on("end", () => resolve({ status: response.statusCode ?? 0, allowOrigin: response.headers["access-control-allow-origin"] as string | undefined, body }));
    });
    request.once("error", reject);
    request.end();
  });
}

const handshake = (http: string): string => `${http}/socket.io/?EIO=4&transport=polling`;
const sidOf = (body: string): string => (JSON.parse(body.slice(body.indexOf("{"))) as { sid: string }).sid;

function originChecks(start: () => Promise<ServerProcess>): void {
  let server: ServerProcess;
  const open: TestPeer[] = [];
  beforeAll(async () => {
    server = await start();
  });
  afterEach(() => closeAll(open.splice(0)));
  afterAll(async () => {
    await server?.stop();
  });

  it("/ws and the dialects' paths: a listed Origin and none pass, another gets 403", async () => {
    const base = server.ws.replace(/\/ws$/, "");
    for (const url of [server.ws, `${base}/p2p/ws`, `${base}/randomchat/ws`, `${base}/pigeon?peerId=${"b".repeat(40)}`]) {
      expect(await upgradeWith(url, APP), url).toBe("open");
      expect(await upgradeWith(url), url).toBe("open");
      expect(await upgradeWith(url, FOREIGN), url).toBe(403);
    }
  });

  it("Socket.IO over WebSocket: a foreign Origin gets 403 at the upgrade; a listed one and none connect", async () => {
    const url = `${server.ws.replace(/\/ws$/, "")}/socket.io/?EIO=4&transport=websocket`;
    expect(await upgradeWith(url, FOREIGN)).toBe(403);
    expect(await upgradeWith(url, APP)).toBe("open");
    const peer = await connectSio(server.http);
    open.push(peer);
    expect((await peer.register()).type).toBe("registered");
  });

  it("Socket.IO long-polling: the handshake and every later request with a foreign Origin get 403; CORS names only a listed Origin", async () => {
    const foreign = await getWith(handshake(server.http), FOREIGN);
    expect(foreign.status).toBe(403);
    expect(foreign.allowOrigin).toBeUndefined();
    const listed = await getWith(handshake(server.http), APP);
    expect(listed.status).toBe(200);
    expect(listed.allowOrigin).toBe(APP);
    const none = await getWith(handshake(server.http));
    expect(none.status).toBe(200);
    // The session exists; a request of it from a foreign page is refused all the same.
    const sid = sidOf(listed.body);
    expect((await getWith(`${handshake(server.http)}&sid=${sid}`, FOREIGN)).status).toBe(403);
    const peer = await connectSio(server.http, { transports: ["polling"] });
    open.push(peer);
    expect((await peer.register()).type).toBe("registered");
  });

  it("PeerPigeon's HTTP endpoints name a listed Origin in their CORS header, and no other", async () => {
    const health = `${server.http}/pigeon/health`;
    expect((await getWith(health, APP)).allowOrigin).toBe(APP);
    expect((await getWith(health, FOREIGN)).allowOrigin).toBeUndefined();
  });
}

describe("allowed_origins on one process", () => {
  originChecks(() => startServer({ config: { allowed_origins: [APP, "http://localhost:3000"] } }));
});

describe("allowed_origins on a 2-worker cluster", () => {
  originChecks(() => startServer({ config: { allowed_origins: APP }, env: { PEER_WORKERS: "2" }, timeoutMs: 30_000 }));
});

describe("allowed_origins by default (*)", () => {
  let server: ServerProcess;
  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it("lets every Origin in and reflects it in Socket.IO's CORS answer; PeerPigeon answers *", async () => {
    expect(await upgradeWith(server.ws, FOREIGN)).toBe("open");
    const polling = await getWith(handshake(server.http), FOREIGN);
    expect(polling.status).toBe(200);
    expect(polling.allowOrigin).toBe(FOREIGN);
    expect((await getWith(`${server.http}/pigeon/health`, FOREIGN)).allowOrigin).toBe("*");
  });
});
