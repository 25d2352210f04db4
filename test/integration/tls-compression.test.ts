import { randomBytes, randomUUID } from "node:crypto";
import { TLSSocket } from "node:tls";
import { io as ioClient, type Socket } from "socket.io-client";
import type WebSocket from "ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectWs, type Envelope, type TestPeer } from "../helpers/peers.ts";
import { startServer, type ServerProcess } from "../helpers/server-process.ts";
import { httpsJson, makeCertificate, type Certificate } from "../helpers/tls.ts";

/** Well above what any payload below needs; the default (64 KB) would refuse the large messages. */
const MAX_MESSAGE_SIZE = 1024 * 1024;

let cert: Certificate;
let ca: string;

beforeAll(() => {
  cert = makeCertificate();
  ca = cert.ca;
});
afterAll(() => cert?.remove());

/** A large payload: an incompressible half and a very compressible half. */
function largePayload(): { noise: string; text: string } {
  return { noise: randomBytes(96 * 1024).toString("base64"), text: "the quick brown fox jumps over the lazy dog ".repeat(4_000) };
}

/** A minimal Socket.IO peer with TLS options (the shared helper connects over plain HTTP). */
async function sioPeer(url: string, options: { ca?: string } = {}): Promise<{ socket: Socket; fingerprint: string }> {
  const socket = ioClient(url, { transports: ["websocket"], reconnection: false, forceNew: true, ...options });
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", () => resolve());
    socket.once("connect_error", reject);
  });
  const registered = (await socket.timeout(5_000).emitWithAck("register", { payload: { public_key: `key-${randomUUID()}` } })) as Envelope;
  expect(registered.type).toBe("registered");
  return { socket, fingerprint: String(registered.payload?.["fingerprint"]) };
}

/** The WebSocket under a Socket.IO client, to read what it negotiated. */
function engineWebSocket(socket: Socket): WebSocket {
  const engine = socket.io.engine as unknown as { transport: { name: string; ws: WebSocket } };
  expect(engine.transport.name).toBe("websocket");
  return engine.transport.ws;
}

const wsSocket = (peer: TestPeer): WebSocket => (peer as unknown as { socket: WebSocket }).socket;

/** Registers two raw peers and one Socket.IO peer in one namespace and checks large relays both ways. */
async function largeRoundTrips(wsUrl: string, httpUrl: string, tls: { ca?: string }): Promise<{ a: TestPeer; b: TestPeer; c: Socket }> {
  const ns = `big-${randomUUID().slice(0, 8)}`;
  const a = await connectWs(wsUrl, tls);
  const b = await connectWs(wsUrl, tls);
  const c = await sioPeer(httpUrl, tls);
  for (const peer of [a, b]) {
    expect((await peer.register()).type).toBe("registered");
    expect((await peer.join(ns)).type).toBe("peer_list");
  }
  expect(((await c.socket.timeout(5_000).emitWithAck("join", { payload: { namespace: ns } })) as Envelope).type).toBe("peer_list");

  const toB = largePayload();
  a.send("relay", { to: b.fingerprint, payload: toB });
  expect((await b.next("relay")).payload).toEqual(toB);

  const toC = largePayload();
  const atC = new Promise<Envelope>((resolve) => c.socket.once("relay", (body: Envelope) => resolve(body)));
  a.send("relay", { to: c.fingerprint, payload: toC });
  expect((await atC).payload).toEqual(toC);

  const fromC = largePayload();
  const ack = (await c.socket.timeout(5_000).emitWithAck("relay", { to: a.fingerprint, payload: fromC })) as Envelope;
  expect(ack.type).toBe("ok");
  expect(await a.next("relay")).toMatchObject({ from: c.fingerprint, payload: fromC });

  const cast = largePayload();
  c.socket.emit("broadcast", { payload: { namespace: ns, data: cast } });
  for (const peer of [a, b]) expect((await peer.next("broadcast")).payload).toEqual({ namespace: ns, data: cast });
  return { a, b, c: c.socket };
}

describe("TLS with compression enabled", () => {
  let server: ServerProcess;
  let https: string;
  let wss: string;

  beforeAll(async () => {
    server = await startServer({ config: { tls_cert: cert.certPath, tls_key: cert.keyPath, compression_enabled: true, max_message_size: MAX_MESSAGE_SIZE } });
    https = `https://127.0.0.1:${server.port}`;
    wss = `wss://127.0.0.1:${server.port}/ws`;
  });
  afterAll(async () => {
    await server.stop();
  });

  it("serves /health over https with the configured certificate", async () => {
    const { status, body } = await httpsJson(`${https}/health`, ca);
    expect(status).toBe(200);
    expect(body["status"]).toBe("ok");
  });

  it("does not answer plain http on the TLS port", async () => {
    await expect(fetch(`http://127.0.0.1:${server.port}/health`)).rejects.toThrow();
  });

  it("wss:// /ws and https Socket.IO work end to end, negotiating permessage-deflate, with large messages", async () => {
    const { a, b, c } = await largeRoundTrips(wss, https, { ca });
    try {
      expect(wsSocket(a).url.startsWith("wss://")).toBe(true);
      expect((wsSocket(a) as unknown as { _socket: unknown })._socket).toBeInstanceOf(TLSSocket);
      expect(wsSocket(a).extensions).toContain("permessage-deflate");
      expect(engineWebSocket(c).extensions).toContain("permessage-deflate");
    } finally {
      a.close();
      b.close();
      c.disconnect();
    }
  });

  it("a /ws client that does not offer compression still works", async () => {
    const plain = await connectWs(wss, { ca, perMessageDeflate: false });
    try {
      expect(wsSocket(plain).extensions).toBe("");
      expect((await plain.register()).type).toBe("registered");
      expect((await plain.request("ping", {}, ["pong"])).type).toBe("pong");
    } finally {
      plain.close();
    }
  });
});

describe("compression disabled", () => {
  let server: ServerProcess;

  beforeAll(async () => {
    server = await startServer({ config: { compression_enabled: false, max_message_size: MAX_MESSAGE_SIZE } });
  });
  afterAll(async () => {
    await server.stop();
  });

  it("permessage-deflate is not negotiated on /ws or Socket.IO, and large messages still round-trip", async () => {
    const { a, b, c } = await largeRoundTrips(server.ws, server.http, {});
    try {
      // Both clients offer the extension by default; the server declines it.
      expect(wsSocket(a).extensions).toBe("");
      expect(engineWebSocket(c).extensions).toBe("");
    } finally {
      a.close();
      b.close();
      c.disconnect();
    }
  });
});
