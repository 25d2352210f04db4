import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey } from "jose";
import { io as ioClient } from "socket.io-client";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { upgradeOutcome } from "../helpers/admin.ts";
import { closeAll, connectSio, connectWs, sha256, sioClientOptions, type SioOptions, type TestPeer, type Transport } from "../helpers/peers.ts";
import { startNodes } from "../helpers/redis-nodes.ts";
import { startRedisServer, type RedisServer } from "../helpers/redis-server.ts";
import { runToExit, startServer, type ServerProcess } from "../helpers/server-process.ts";

/**
 * Access tokens (auth_jwt_secret, auth_jwt_public_key, auth_jwks_url) against real servers: every
 * connection needs a JWT, on /ws (`?token=` or `Authorization: Bearer`, else HTTP 401 before the
 * upgrade) and on Socket.IO (handshake `auth.token`, `?token=` or Bearer, else `connect_error`
 * with `data.code` 401); `exp` closes a live connection (error 401, close 4003) unless `refresh`
 * brought a newer token; `sub` binds the key and `namespaces` the namespaces. One process covers
 * every case with HS256; a public key (ES256), a JWKS (EdDSA, served here), a 2-worker cluster and
 * two Redis nodes cover acceptance, refusal and expiry.
 */

const SECRET = "the identity provider's shared secret";
const AUDIENCE = "peer-server";
const nowSeconds = (): number => Math.floor(Date.now() / 1_000);

type Signer = (claims: Record<string, unknown>) => Promise<string>;
const hs256: Signer = (claims) => new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).sign(new TextEncoder().encode(SECRET));
const signerOf =
  (key: CryptoKey, alg: string, kid?: string): Signer =>
  (claims) =>
    new SignJWT(claims).setProtectedHeader(kid === undefined ? { alg } : { alg, kid }).sign(key);

/** How a token travels. */
type Carrier = "query" | "bearer" | "auth";

/** The HTTP status of a refused /ws upgrade, or "open". */
const upgradeResult = (url: string, headers: Record<string, string> = {}): Promise<number | "open"> => upgradeOutcome(url, { headers });

/** The `data.code` of a Socket.IO connect_error, or "connected". */
function sioConnectResult(http: string, options: SioOptions & { query?: Record<string, string> }): Promise<number | "connected"> {
  return new Promise((resolve) => {
    const socket = ioClient(http, { ...sioClientOptions(options), ...(options.query === undefined ? {} : { query: options.query }) });
    socket.once("connect", () => {
      socket.disconnect();
      resolve("connected");
    });
    socket.once("connect_error", (error: Error & { data?: { code?: number } }) => {
      socket.disconnect();
      resolve(error.data?.code ?? -1);
    });
  });
}

/** A test peer presenting `token` as `carrier` says. */
async function connectWith(server: ServerProcess, transport: Transport, token: string, carrier: Carrier = transport === "ws" ? "query" : "auth"): Promise<TestPeer> {
  if (transport === "ws") {
    return carrier === "bearer" ? connectWs(server.ws, { headers: { authorization: `Bearer ${token}` } }) : connectWs(`${server.ws}?token=${encodeURIComponent(token)}`);
  }
  if (carrier === "auth") return connectSio(server.http, { auth: { token } });
  if (carrier === "bearer") return connectSio(server.http, { extraHeaders: { authorization: `Bearer ${token}` } });
  return connectSio(`${server.http}?token=${encodeURIComponent(token)}`);
}

/** Waits for the expiry close: the error notice (401, close_code 4003), then the close (4003 on /ws). */
async function expectExpired(peer: TestPeer, timeoutMs: number): Promise<void> {
  const notice = await peer.next((message) => message.type === "error" && message.payload?.["close_code"] === 4003, timeoutMs);
  expect(notice.payload).toEqual({ code: 401, message: "access token expired", close_code: 4003 });
  const closed = await peer.closed;
  if (peer.transport === "ws") expect(closed.code).toBe(4003);
}

/** Acceptance, refusal and expiry on one deployment (each entry point of it), both transports. */
function acceptsRefusesExpires(entries: () => readonly ServerProcess[], sign: () => Signer, track: (peer: TestPeer) => TestPeer): void {
  for (const transport of ["ws", "sio"] as const) {
    it(`${transport}: a valid token is let in; a missing, forged or expired one is refused with 401`, async () => {
      for (const server of entries()) {
        const peer = track(await connectWith(server, transport, await sign()({ aud: AUDIENCE, exp: nowSeconds() + 60 })));
        expect((await peer.register()).type).toBe("registered");
        const forged = await hs256({ aud: AUDIENCE }).then((token) => `${token.slice(0, -4)}AAAA`);
        const expired = await sign()({ aud: AUDIENCE, exp: nowSeconds() - 10 });
        if (transport === "ws") {
          expect(await upgradeResult(server.ws)).toBe(401);
          expect(await upgradeResult(`${server.ws}?token=${forged}`)).toBe(401);
          expect(await upgradeResult(`${server.ws}?token=${expired}`)).toBe(401);
        } else {
          expect(await sioConnectResult(server.http, {})).toBe(401);
          expect(await sioConnectResult(server.http, { auth: { token: forged } })).toBe(401);
          expect(await sioConnectResult(server.http, { auth: { token: expired } })).toBe(401);
        }
      }
    });

    it(`${transport}: a live connection is closed when its token expires (401, close 4003)`, async () => {
      const server = entries()[entries().length - 1] as ServerProcess;
      const peer = track(await connectWith(server, transport, await sign()({ aud: AUDIENCE, exp: nowSeconds() + 3 })));
      expect((await peer.register()).type).toBe("registered");
      await expectExpired(peer, 6_000);
    });
  }
}

describe("access tokens (HS256) on one process", () => {
  let server: ServerProcess;
  const open: TestPeer[] = [];
  const track = <T extends TestPeer>(peer: T): T => {
    open.push(peer);
    return peer;
  };
  beforeAll(async () => {
    server = await startServer({ config: { auth_jwt_secret: SECRET, auth_jwt_audience: AUDIENCE } });
  });
  afterEach(() => closeAll(open.splice(0)));
  afterAll(async () => {
    await server?.stop();
  });

  acceptsRefusesExpires(() => [server], () => hs256, track);

  it("the token may travel as ?token=, a Bearer header, or (Socket.IO) the handshake's auth, polling included", async () => {
    const token = await hs256({ aud: AUDIENCE });
    for (const [transport, carrier] of [["ws", "query"], ["ws", "bearer"], ["sio", "auth"], ["sio", "query"], ["sio", "bearer"]] as const) {
      const peer = track(await connectWith(server, transport, token, carrier));
      expect((await peer.register()).type, `${transport} ${carrier}`).toBe("registered");
    }
    const polling = track(await connectSio(server.http, { transports: ["polling"], auth: { token } }));
    expect((await polling.register()).type).toBe("registered");
    expect(await sioConnectResult(server.http, { transports: ["polling"] })).toBe(401);
  });

  it("a token for another audience is refused with 401", async () => {
    const token = await hs256({ aud: "another-service" });
    expect(await upgradeResult(`${server.ws}?token=${token}`)).toBe(401);
    expect(await sioConnectResult(server.http, { auth: { token } })).toBe(401);
  });

  it("the dialects' WebSocket paths need the token too (PeerPigeon's own token is the JWT)", async () => {
    const peerId = "a".repeat(40);
    const base = server.ws.replace(/\/ws$/, "");
    expect(await upgradeResult(`${base}/pigeon?peerId=${peerId}`)).toBe(401);
    expect(await upgradeResult(`${base}/p2p/ws`)).toBe(401);
    expect(await upgradeResult(`${base}/randomchat/ws`)).toBe(401);
    const token = await hs256({ aud: AUDIENCE });
    expect(await upgradeResult(`${base}/pigeon?peerId=${peerId}&token=${token}`)).toBe("open");
    expect(await upgradeResult(`${base}/p2p/ws`, { authorization: `Bearer ${token}` })).toBe("open");
  });

  for (const transport of ["ws", "sio"] as const) {
    it(`${transport}: sub binds the key: another is refused with 403 and nothing changes, its own registers`, async () => {
      const key = `key-${transport}-${Date.now()}`;
      const peer = track(await connectWith(server, transport, await hs256({ aud: AUDIENCE, sub: sha256(key) })));
      const refused = await peer.register({ publicKey: "someone-else" });
      expect(refused.type).toBe("error");
      expect(refused.payload?.["code"]).toBe(403);
      const registered = await peer.register({ publicKey: key });
      expect(registered.payload?.["fingerprint"]).toBe(sha256(key));
    });

    it(`${transport}: namespaces bounds join and match (a trailing * is a prefix); rooms are free`, async () => {
      const peer = track(await connectWith(server, transport, await hs256({ aud: AUDIENCE, namespaces: ["lobby", "game-*"] })));
      await peer.register();
      expect((await peer.join("lobby")).type).toBe("peer_list");
      expect((await peer.join("game-42")).type).toBe("peer_list");
      const refused = await peer.join("secret");
      expect(refused.payload?.["code"]).toBe(403);
      const match = await peer.request("match", { payload: { namespace: "secret", group_size: 2 } }, ["match", "matched"]);
      expect(match.payload?.["code"]).toBe(403);
      expect((await peer.request("create_room", { payload: {} }, ["room_created"])).type).toBe("room_created");
    });

    it(`${transport}: refresh with a newer token keeps the connection past the first exp; a bad one is 401 and changes nothing`, async () => {
      const peer = track(await connectWith(server, transport, await hs256({ aud: AUDIENCE, exp: nowSeconds() + 3 })));
      await peer.register();
      const bad = await peer.request("refresh", { payload: { token: await hs256({ aud: "elsewhere", exp: nowSeconds() + 60 }) } }, ["ok"]);
      expect(bad.payload?.["code"]).toBe(401);
      const ok = await peer.request("refresh", { payload: { token: await hs256({ aud: AUDIENCE, exp: nowSeconds() + 60 }) } }, ["ok"]);
      expect(ok).toMatchObject({ type: "ok", payload: { ref: "refresh" } });
      await new Promise((resolve) => setTimeout(resolve, 4_000));
      expect((await peer.request("ping", {}, ["pong"])).type).toBe("pong");
    });
  }
});

describe("access tokens with a public key (ES256) and with a JWKS (EdDSA)", () => {
  let es256: ServerProcess;
  let jwks: ServerProcess;
  let keyServer: Server;
  let signES256: Signer;
  let signEdDSA: Signer;
  let stranger: Signer;
  const open: TestPeer[] = [];
  const track = <T extends TestPeer>(peer: T): T => {
    open.push(peer);
    return peer;
  };
  beforeAll(async () => {
    const ec = await generateKeyPair("ES256", { extractable: true });
    const ed = await generateKeyPair("Ed25519", { extractable: true });
    signES256 = signerOf(ec.privateKey, "ES256");
    signEdDSA = signerOf(ed.privateKey, "EdDSA", "ed-1");
    stranger = signerOf((await generateKeyPair("Ed25519")).privateKey, "EdDSA", "ed-1");
    const set = JSON.stringify({ keys: [{ ...(await exportJWK(ed.publicKey)), kid: "ed-1", alg: "EdDSA", use: "sig" }] });
    keyServer = createServer((_request, response) => response.writeHead(200, { "content-type": "application/json" }).end(set));
    await new Promise<void>((resolve) => keyServer.listen(0, "127.0.0.1", resolve));
    const jwksUrl = `http://127.0.0.1:${(keyServer.address() as AddressInfo).port}/.well-known/jwks.json`;
    [es256, jwks] = await Promise.all([
      startServer({ config: { auth_jwt_public_key: await exportSPKI(ec.publicKey), auth_jwt_audience: AUDIENCE } }),
      startServer({ config: { auth_jwks_url: jwksUrl, auth_jwt_audience: AUDIENCE } }),
    ]);
  });
  afterEach(() => closeAll(open.splice(0)));
  afterAll(async () => {
    await Promise.all([es256?.stop(), jwks?.stop()]);
    await new Promise<void>((resolve) => keyServer.close(() => resolve()));
  });

  for (const transport of ["ws", "sio"] as const) {
    it(`${transport}: each verifies its own key's tokens and refuses others (401), HS256 ones included`, async () => {
      for (const [server, sign] of [
        [es256, () => signES256],
        [jwks, () => signEdDSA],
      ] as const) {
        const peer = track(await connectWith(server, transport, await sign()({ aud: AUDIENCE })));
        expect((await peer.register()).type).toBe("registered");
        for (const token of [await stranger({ aud: AUDIENCE }), await hs256({ aud: AUDIENCE })]) {
          if (transport === "ws") expect(await upgradeResult(`${server.ws}?token=${token}`)).toBe(401);
          else expect(await sioConnectResult(server.http, { auth: { token } })).toBe(401);
        }
      }
    });
  }
});

describe("access tokens on a 2-worker cluster", () => {
  let server: ServerProcess;
  let sign: Signer;
  const open: TestPeer[] = [];
  beforeAll(async () => {
    const ed = await generateKeyPair("Ed25519", { extractable: true });
    sign = signerOf(ed.privateKey, "EdDSA");
    server = await startServer({ config: { auth_jwt_public_key: await exportSPKI(ed.publicKey), auth_jwt_audience: AUDIENCE }, env: { PEER_WORKERS: "2" }, timeoutMs: 30_000 });
  });
  afterEach(() => closeAll(open.splice(0)));
  afterAll(async () => {
    await server?.stop();
  });

  acceptsRefusesExpires(
    () => [server],
    () => sign,
    (peer) => {
      open.push(peer);
      return peer;
    },
  );
});

describe("access tokens on 2 Redis nodes", () => {
  let redis: RedisServer;
  let nodes: ServerProcess[] = [];
  const open: TestPeer[] = [];
  beforeAll(async () => {
    redis = await startRedisServer();
    const config = { auth_jwt_secret: SECRET, auth_jwt_audience: AUDIENCE };
    nodes = await startNodes(redis, [{ config }, { config }]);
  });
  afterEach(() => closeAll(open.splice(0)));
  afterAll(async () => {
    await Promise.all(nodes.map((node) => node.stop()));
    await redis?.stop();
  });

  acceptsRefusesExpires(
    () => nodes,
    () => hs256,
    (peer) => {
      open.push(peer);
      return peer;
    },
  );

  it("sub and namespaces hold across nodes: a peer of another node is reached only in a granted namespace", async () => {
    const key = `key-${Date.now()}`;
    const [first, second] = nodes as [ServerProcess, ServerProcess];
    const a = await connectWith(first, "ws", await hs256({ aud: AUDIENCE, sub: sha256(key), namespaces: ["lobby"] }));
    const b = await connectWith(second, "sio", await hs256({ aud: AUDIENCE, namespaces: ["lobby"] }));
    open.push(a, b);
    expect((await a.register({ publicKey: "not-mine" })).payload?.["code"]).toBe(403);
    expect((await a.register({ publicKey: key })).type).toBe("registered");
    await b.register();
    expect((await b.join("lobby")).type).toBe("peer_list");
    expect((await a.join("lobby")).type).toBe("peer_list");
    expect((await b.join("other")).payload?.["code"]).toBe(403);
  });
});

describe("start-up checks of the trust options", () => {
  it("an unusable public key, a JWKS URL that is not http(s) and a bad trusted_proxies entry stop start-up (exit 2), each named", async () => {
    const { code, output } = await runToExit([], { PEER_AUTH_JWT_PUBLIC_KEY: "not a key", PEER_TRUSTED_PROXIES: "10.0.0.0/8,nginx" });
    expect(code, output).toBe(2);
    expect(output).toContain("auth_jwt_public_key:");
    expect(output).toContain("trusted_proxies:");
    expect(output).not.toMatch(/^\s+at /m);
    const jwks = await runToExit([], { PEER_AUTH_JWKS_URL: "file:///etc/keys.json" });
    expect(jwks.code, jwks.output).toBe(2);
    expect(jwks.output).toContain("auth_jwks_url:");
  });
});
