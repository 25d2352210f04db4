import { randomUUID } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { Agent } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect as tlsConnect, type ConnectionOptions } from "node:tls";
import { io as ioClient, type ManagerOptions, type Socket, type SocketOptions } from "socket.io-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import {
  PLACEHOLDERS,
  placeholdersOf,
  renderConfD,
  renderStandalone,
  TEMPLATES_DIR,
  templatesIn,
  TLS_PLACEHOLDERS,
  TLS_TEMPLATES_DIR,
  type SiteOptions,
} from "../../nginx/render.ts";
import { workers } from "../helpers/cluster.ts";
import { NginxFront, type NginxProcess, type NginxTls } from "../helpers/nginx.ts";
import { closeAll, connectWs, type Envelope, type TestPeer } from "../helpers/peers.ts";
import { getJson, startServer, type ServerProcess } from "../helpers/server-process.ts";
import { httpsJson, makeCertificate, type Certificate } from "../helpers/tls.ts";
import { waitFor } from "../helpers/wait.ts";

/*
 * The site's optional TLS server (nginx/tls) in real nginx (the Debian package), rendered by
 * nginx/render.ts with a certificate openssl makes for 127.0.0.1, in front of two real server
 * processes; clients trust that certificate (`ca`). The plain server runs beside it. All clients
 * connect from 127.0.0.1, which the sticky upstream sends to one node, so they see each other with
 * the local broker.
 */

const SITE: SiteOptions = { upstreams: ["127.0.0.1:18081"], listen: "127.0.0.1:18080" };
const TLS = { listen: "127.0.0.1:18443", cert: "/etc/peer/tls/cert.pem", key: "/etc/peer/tls/key.pem" };

const fileOf = (options: SiteOptions, name: string): string => {
  const file = renderConfD(options).find((candidate) => candidate.name === name);
  if (file === undefined) throw new Error(`no conf.d/${name} rendered`);
  return file.text;
};

/** The directives of a rendered file, comments dropped. */
const directives = (text: string): string[] =>
  text
    .split("\n")
    .map((line) => line.replace(/#.*$/, "").trim())
    .filter((line) => line !== "");

describe("rendering the TLS server", () => {
  it("is not rendered without TLS options: the site keeps its plain server only", () => {
    const files = renderConfD(SITE);
    expect(files.map((file) => file.name)).toEqual(["default.conf", "peer-server-locations.inc"]);
    for (const file of files) expect(directives(file.text).join("\n")).not.toMatch(/\bssl/);
  });

  it("adds a second server that listens with ssl on the given address, with the given PEM files", () => {
    const files = renderConfD({ ...SITE, tls: TLS });
    expect(files.map((file) => file.name)).toEqual(["default.conf", "peer-server-locations.inc", "peer-server-tls.conf"]);
    const tls = directives(fileOf({ ...SITE, tls: TLS }, "peer-server-tls.conf"));
    expect(tls).toContain("listen 127.0.0.1:18443 ssl;");
    expect(tls).toContain("ssl_certificate /etc/peer/tls/cert.pem;");
    expect(tls).toContain("ssl_certificate_key /etc/peer/tls/key.pem;");
    // The plain site is the same with or without TLS.
    expect(fileOf({ ...SITE, tls: TLS }, "default.conf")).toBe(fileOf(SITE, "default.conf"));
  });

  it("allows TLS 1.2 and 1.3 only, and for TLS 1.2 forward-secret AEAD suites only", () => {
    const tls = directives(fileOf({ ...SITE, tls: TLS }, "peer-server-tls.conf"));
    expect(tls).toContain("ssl_protocols TLSv1.2 TLSv1.3;");
    const ciphers = tls.find((line) => line.startsWith("ssl_ciphers "))?.slice("ssl_ciphers ".length, -1);
    expect(ciphers, "ssl_ciphers is set").toBeDefined();
    for (const suite of (ciphers ?? "").split(":")) expect(suite).toMatch(/^ECDHE-(ECDSA|RSA)-(AES(128|256)-GCM-SHA(256|384)|CHACHA20-POLY1305)$/);
  });

  it("has both servers proxy the same locations: one file that each includes, and no location anywhere else", () => {
    const options = { ...SITE, tls: TLS };
    const include = "include conf.d/peer-server-locations.inc;";
    const shared = directives(fileOf(options, "peer-server-locations.inc"));
    for (const server of ["default.conf", "peer-server-tls.conf"]) {
      const lines = directives(fileOf(options, server));
      expect(lines.filter((line) => line === include), server).toHaveLength(1);
      expect(lines.filter((line) => /^(location|proxy_)/.test(line)), server).toEqual([]);
    }
    const locations = shared.filter((line) => line.startsWith("location "));
    expect(locations).toEqual(expect.arrayContaining(["location = /ws {", "location /socket.io/ {", "location /randomchat/ {", "location = /health {", "location = /readyz {", "location / {"]));
    expect(shared).toContain("proxy_set_header X-Forwarded-Proto $scheme;");
  });

  it("keeps the placeholder rules: nginx/templates uses the site's placeholders only, nginx/tls the TLS ones only", () => {
    const used = (dir: string): string[] => [...new Set(templatesIn(dir).flatMap((name) => placeholdersOf(readFileSync(join(dir, name), "utf8"))))].sort();
    expect(used(TEMPLATES_DIR)).toEqual([...PLACEHOLDERS].sort());
    expect(used(TLS_TEMPLATES_DIR)).toEqual([...TLS_PLACEHOLDERS].sort());
    // The one file rendered with TLS only.
    expect(templatesIn(TLS_TEMPLATES_DIR)).toEqual(["peer-server-tls.conf.template"]);
  });

  it("refuses certificate paths nginx would misread, and a bad TLS listen value", () => {
    for (const cert of ["cert.pem", "/etc/my certs/cert.pem", "/etc/tls/cert.pem;", "/etc/$tls/cert.pem", "/etc/{tls}/cert.pem"]) {
      expect(() => renderConfD({ ...SITE, tls: { ...TLS, cert } }), cert).toThrow(/bad TLS certificate path/);
    }
    expect(() => renderConfD({ ...SITE, tls: { ...TLS, key: "key.pem" } })).toThrow(/bad TLS key path/);
    expect(() => renderConfD({ ...SITE, tls: { ...TLS, listen: "127.0.0.1:0" } })).toThrow(/bad listen value/);
  });

  it("renders standalone into conf.d/ like the image, and drops a TLS server left by an earlier run without TLS", () => {
    const dir = mkdtempSync(join(tmpdir(), "peer-nginx-render-"));
    try {
      const withTls = renderStandalone(dir, { ...SITE, tls: TLS });
      expect(withTls.files.map((path) => path.slice(withTls.prefix.length))).toEqual(["/conf.d/default.conf", "/conf.d/peer-server-locations.inc", "/conf.d/peer-server-tls.conf"]);
      expect(readFileSync(withTls.configPath, "utf8")).toContain(`include ${JSON.stringify(join(withTls.prefix, "conf.d/*.conf"))};`);
      const plain = renderStandalone(dir, SITE);
      expect(existsSync(join(plain.prefix, "conf.d/peer-server-tls.conf"))).toBe(false);
      expect(existsSync(plain.sitePath)).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** A Socket.IO client over https (long-polling) and wss through nginx, trusting the test certificate. */
class SioTlsPeer {
  readonly received: Envelope[] = [];
  fingerprint = "";
  alias = "";

  private constructor(readonly socket: Socket) {
    socket.onAny((event: string, body: Record<string, unknown> | undefined) => this.received.push({ type: event, ...(body ?? {}) }));
  }

  static async connect(url: string, ca: string, transports: ("polling" | "websocket")[]): Promise<SioTlsPeer> {
    // `agent` carries the CA for the long-polling requests, `ca` for the WebSocket; the client's
    // typings declare `agent` as string | boolean.
    const options: Partial<ManagerOptions & SocketOptions> = { transports, reconnection: false, forceNew: true, ca, agent: new Agent({ ca }) as unknown as boolean };
    const peer = new SioTlsPeer(ioClient(url, options));
    await new Promise<void>((resolve, reject) => {
      peer.socket.once("connect", () => resolve());
      peer.socket.once("connect_error", reject);
    });
    return peer;
  }

  request(type: string, fields: Record<string, unknown> = {}): Promise<Envelope> {
    return this.socket.timeout(5_000).emitWithAck(type, fields) as Promise<Envelope>;
  }

  async register(): Promise<Envelope> {
    const reply = await this.request("register", { payload: { public_key: `key-${randomUUID()}` } });
    this.fingerprint = String(reply.payload?.["fingerprint"]);
    this.alias = String(reply.payload?.["alias"]);
    return reply;
  }

  /** Resolves once the session has moved from long-polling to WebSocket. */
  async upgraded(): Promise<void> {
    await waitFor(
      () => this.socket.io.engine.transport.name,
      (name) => name === "websocket",
      { timeoutMs: 5_000, intervalMs: 20, what: "the Socket.IO session to upgrade to WebSocket" },
    );
  }

  /** The first event of that type, buffered or future. */
  async next(type: string): Promise<Envelope> {
    const index = await waitFor(
      () => this.received.findIndex((message) => message.type === type),
      (found) => found >= 0,
      { timeoutMs: 5_000, intervalMs: 20, what: `a ${type} event` },
    );
    return this.received.splice(index, 1)[0] as Envelope;
  }

  close(): void {
    this.socket.disconnect();
  }
}

/** A dialect client: a plain WebSocket exchanging JSON text frames, over wss with the test CA. */
class WssJsonClient {
  readonly received: Record<string, unknown>[] = [];

  private constructor(readonly socket: WebSocket) {
    socket.on("message", (data: Buffer, isBinary: boolean) => {
      if (!isBinary) this.received.push(JSON.parse(data.toString()) as Record<string, unknown>);
    });
  }

  static async open(url: string, ca: string): Promise<WssJsonClient> {
    const client = new WssJsonClient(new WebSocket(url, { ca }));
    await new Promise<void>((resolve, reject) => {
      client.socket.once("open", () => resolve());
      client.socket.once("error", reject);
    });
    return client;
  }

  send(message: Record<string, unknown>): void {
    this.socket.send(JSON.stringify(message));
  }

  /** The first message of that type (buffered or future); it stays buffered. */
  next(type: string): Promise<Record<string, unknown>> {
    return waitFor(
      () => this.received.find((message) => message["type"] === type),
      (found) => found !== undefined,
      { timeoutMs: 5_000, intervalMs: 20, what: `a ${type} frame` },
    ) as Promise<Record<string, unknown>>;
  }

  close(): void {
    this.socket.close();
  }
}

/** A bare TLS handshake with nginx's TLS server: the protocol and cipher agreed, or the error. */
function handshake(port: number, options: ConnectionOptions): Promise<{ protocol: string | null; cipher: string }> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: "127.0.0.1", port, ...options });
    socket.once("secureConnect", () => {
      resolve({ protocol: socket.getProtocol(), cipher: socket.getCipher().name });
      socket.destroy();
    });
    socket.once("error", reject);
  });
}

describe("nginx's TLS server (project config) in front of two nodes", () => {
  let nodes: ServerProcess[] = [];
  let cert: Certificate | undefined;
  const proxy = new NginxFront();
  const peers: TestPeer[] = [];
  const sioPeers: SioTlsPeer[] = [];
  const dialects: WssJsonClient[] = [];

  beforeAll(async () => {
    // openssl missing or failing fails every test below with its message (never a skip).
    cert = makeCertificate();
    nodes = await Promise.all([startServer(), startServer()]);
    // A missing or failing nginx fails every test below with its message (never a skip).
    await proxy.start(nodes, { tls: cert });
  });
  afterAll(async () => {
    closeAll(peers);
    for (const peer of sioPeers) peer.close();
    for (const client of dialects) client.close();
    await proxy.stop();
    await Promise.all(nodes.map((node) => node.stop()));
    cert?.remove();
  });

  const nginx = (): NginxProcess => proxy.get();
  const tls = (): NginxTls => {
    const server = proxy.get().tls;
    if (server === undefined) throw new Error("nginx runs without its TLS server");
    return server;
  };
  const ca = (): string => {
    if (cert === undefined) throw new Error("no test certificate");
    return cert.ca;
  };

  async function registered<T extends TestPeer>(connecting: Promise<T>): Promise<T> {
    const peer = await connecting;
    peers.push(peer);
    expect((await peer.register()).type).toBe("registered");
    return peer;
  }

  async function sioPeer(transports: ("polling" | "websocket")[]): Promise<SioTlsPeer> {
    const peer = await SioTlsPeer.connect(tls().https, ca(), transports);
    sioPeers.push(peer);
    expect((await peer.register()).type).toBe("registered");
    return peer;
  }

  /** Which node (index into `nodes`) holds a registered peer, asked of each node directly. */
  async function nodeOf(fingerprint: string): Promise<number> {
    const holders: number[] = [];
    for (const [index, node] of nodes.entries()) {
      if ((await workers(node)).some((worker) => worker.peers.includes(fingerprint))) holders.push(index);
    }
    expect(holders, `nodes holding ${fingerprint}`).toHaveLength(1);
    return holders[0] as number;
  }

  it("answers GET /health over https with the test certificate", async () => {
    const { status, body } = await httpsJson(`${tls().https}/health`, ca());
    expect(status).toBe(200);
    expect(body).toMatchObject({ status: "ok", max_peers: 100_000 });
    expect((await httpsJson(`${tls().https}/readyz`, ca())).body).toMatchObject({ ready: true });
  });

  it("negotiates TLS 1.3, or TLS 1.2 with an ECDHE AEAD suite; refuses TLS 1.1 and weak TLS 1.2 suites", async () => {
    const port = tls().port;
    expect(await handshake(port, { ca: ca() })).toMatchObject({ protocol: "TLSv1.3" });
    const tls12 = await handshake(port, { ca: ca(), maxVersion: "TLSv1.2" });
    expect(tls12.protocol).toBe("TLSv1.2");
    expect(tls12.cipher).toMatch(/^ECDHE-RSA-(AES\d+-GCM-SHA\d+|CHACHA20-POLY1305)$/);
    // The client offers TLS 1.0 and 1.1 only (security level 0 lets it); nginx answers with an alert.
    await expect(handshake(port, { ca: ca(), minVersion: "TLSv1", maxVersion: "TLSv1.1", ciphers: "DEFAULT@SECLEVEL=0" })).rejects.toMatchObject({ code: "ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION" });
    // Static-RSA key exchange and CBC: not among the server's TLS 1.2 suites.
    await expect(handshake(port, { ca: ca(), maxVersion: "TLSv1.2", ciphers: "AES128-SHA:AES256-SHA256" })).rejects.toMatchObject({ code: "ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE" });
  });

  it("carries raw /ws over wss: register, join, ping, and two peers see and signal each other", async () => {
    const a = await registered(connectWs(tls().wss, { ca: ca() }));
    const b = await registered(connectWs(tls().wss, { ca: ca() }));
    expect(await a.request("ping", {}, ["pong"])).toMatchObject({ type: "pong" });
    await a.join("tls-ws");
    expect((await b.join("tls-ws")).payload?.["total"]).toBe(2);
    expect(await a.next("peer_joined")).toMatchObject({ from: b.fingerprint, namespace: "tls-ws" });
    a.send("signal", { to: b.fingerprint, payload: { signal_type: "offer", sdp: "v=0" } });
    expect(await b.next("signal")).toMatchObject({ from: a.fingerprint, to: b.fingerprint, payload: { signal_type: "offer", sdp: "v=0" } });
    b.send("signal", { to: a.alias, payload: { signal_type: "answer", sdp: "v=1" } });
    expect(await a.next("signal")).toMatchObject({ from: b.fingerprint, to: a.fingerprint, payload: { signal_type: "answer", sdp: "v=1" } });
  });

  it("carries Socket.IO over https long-polling, upgraded to wss, and a raw wss peer signals with it both ways", async () => {
    const s = await sioPeer(["polling", "websocket"]);
    // The upgrade request carries the session id and fails unless it reaches the node holding it.
    await s.upgraded();
    expect(await s.request("ping")).toMatchObject({ type: "pong" });
    expect((await s.request("join", { payload: { namespace: "tls-sio" } })).type).toBe("peer_list");
    const w = await registered(connectWs(tls().wss, { ca: ca() }));
    expect((await w.join("tls-sio")).payload?.["total"]).toBe(2);
    expect(await s.next("peer_joined")).toMatchObject({ from: w.fingerprint });
    w.send("signal", { to: s.alias, payload: { signal_type: "offer", sdp: "from-ws" } });
    expect(await s.next("signal")).toMatchObject({ from: w.fingerprint, to: s.fingerprint, payload: { signal_type: "offer", sdp: "from-ws" } });
    expect((await s.request("signal", { to: w.fingerprint, payload: { signal_type: "answer", sdp: "from-sio" } })).type).toBe("ok");
    expect(await w.next("signal")).toMatchObject({ from: s.fingerprint, to: w.fingerprint, payload: { signal_type: "answer", sdp: "from-sio" } });
    expect(await nodeOf(s.fingerprint)).toBe(await nodeOf(w.fingerprint));
  });

  it("keeps a long-polling-only Socket.IO session over https on its node across many requests", async () => {
    const p = await sioPeer(["polling"]);
    expect((await p.request("join", { payload: { namespace: "tls-poll" } })).type).toBe("peer_list");
    for (let i = 0; i < 10; i++) expect(await p.request("ping")).toMatchObject({ type: "pong" });
    const w = await registered(connectWs(tls().wss, { ca: ca() }));
    await w.join("tls-poll");
    w.send("broadcast", { payload: { namespace: "tls-poll", data: { n: 1 } } });
    expect(await p.next("broadcast")).toMatchObject({ from: w.fingerprint, payload: { namespace: "tls-poll", data: { n: 1 } } });
    expect(p.socket.io.engine.transport.name).toBe("polling");
  });

  it("carries a dialect over wss: two random-chat users at /randomchat/ws get ready, are matched and relay an offer", async () => {
    const a = await WssJsonClient.open(`${tls().https.replace(/^https/, "wss")}/randomchat/ws`, ca());
    const b = await WssJsonClient.open(`${tls().https.replace(/^https/, "wss")}/randomchat/ws`, ca());
    dialects.push(a, b);
    const [readyA, readyB] = [await a.next("ready"), await b.next("ready")];
    expect(typeof readyA["clientId"]).toBe("string");
    expect(readyB["clientId"]).not.toBe(readyA["clientId"]);
    a.send({ type: "available" });
    b.send({ type: "available" });
    expect(await a.next("matched")).toMatchObject({ partnerId: readyB["clientId"] });
    expect(await b.next("matched")).toMatchObject({ partnerId: readyA["clientId"] });
    a.send({ type: "offer", sdp: "v=0" });
    expect(await b.next("offer")).toEqual({ type: "offer", from: readyA["clientId"], sdp: "v=0" });
    const { status, body } = await httpsJson(`${tls().https}/randomchat/healthz`, ca());
    expect(status).toBe(200);
    expect(body).toMatchObject({ clients: expect.any(Number) as number });
  });

  it("still serves the plain server beside it: /health over http, and a ws:// peer signals a wss:// one", async () => {
    const { status, body } = await getJson(`${nginx().http}/health`);
    expect(status).toBe(200);
    expect(body).toMatchObject({ status: "ok" });
    const plain = await registered(connectWs(nginx().ws));
    const secure = await registered(connectWs(tls().wss, { ca: ca() }));
    await plain.join("tls-mixed");
    await secure.join("tls-mixed");
    expect(await plain.next("peer_joined")).toMatchObject({ from: secure.fingerprint });
    secure.send("signal", { to: plain.fingerprint, payload: { signal_type: "offer", sdp: "v=2" } });
    expect(await plain.next("signal")).toMatchObject({ from: secure.fingerprint, to: plain.fingerprint });
  });
});
