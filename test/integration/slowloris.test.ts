import { get as httpsGet } from "node:https";
import { connect as connectTcp, type Socket } from "node:net";
import { connect as connectTls } from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeAll, connectSio, connectWs, registeredPeer, type TestPeer } from "../helpers/peers.ts";
import { startServer, type ServerProcess } from "../helpers/server-process.ts";
import { httpsJson, makeCertificate, type Certificate } from "../helpers/tls.ts";

/**
 * Slow clients against the real server: a request head that trickles in one header line at a time
 * must be cut at header_timeout, however steadily its bytes come (an idle timeout would restart on
 * every line), and a body that trickles past read_timeout must be cut too, while normal clients are
 * served. Run against a 2-worker cluster (the primary's router enforces the deadlines), a single
 * process (Node's HTTP server does) and a 2-worker cluster over TLS (the router cannot read, the
 * worker enforces them).
 */

const HEADER_TIMEOUT_MS = 1_000;
const READ_TIMEOUT_MS = 3_000;
const SLOW_CLIENTS = 50;
const LINE_EVERY_MS = 300;
/** A slow client sends at most this many lines, then only waits: bounded whatever the server does. */
const MAX_LINES = 40;
/** A slow client still open this long after connecting counts as not cut, and is closed by the test. */
const GIVE_UP_MS = 8_000;

interface Outcome {
  /** Whether the server closed the connection (false: the test gave up on it). */
  closedByServer: boolean;
  /** Milliseconds from connect to close. */
  afterMs: number;
  /** Everything the server sent. */
  response: string;
}

/**
 * Sends `first` once connected (over TLS: once the handshake is done), then one of `line(i)` every
 * LINE_EVERY_MS until the server closes the connection.
 */
function dribble(port: number, first: string, line: (index: number) => string, tls = false): Promise<Outcome> {
  return new Promise((resolve) => {
    const socket: Socket = tls ? connectTls({ port, host: "127.0.0.1", rejectUnauthorized: false }) : connectTcp(port, "127.0.0.1");
    let response = "";
    let started = Date.now();
    let sent = 0;
    let gaveUp = false;
    const ticker = setInterval(() => {
      if (sent < MAX_LINES && socket.writable) socket.write(line(sent++));
    }, LINE_EVERY_MS);
    const giveUp = setTimeout(() => {
      gaveUp = true;
      socket.destroy();
    }, GIVE_UP_MS);
    socket.on("connect", () => (started = Date.now()));
    socket.on(tls ? "secureConnect" : "connect", () => socket.write(first));
    socket.on("data", (chunk: Buffer) => (response += chunk.toString("latin1")));
    socket.on("error", () => undefined); // a reset after the server's answer is still a close
    socket.on("close", () => {
      clearInterval(ticker);
      clearTimeout(giveUp);
      resolve({ closedByServer: !gaveUp, afterMs: Date.now() - started, response });
    });
  });
}

/** The answer to a request that missed a deadline (the router's, Node's or the worker's). */
const TIMED_OUT = /^HTTP\/1\.1 408 Request Timeout\r\n(?:[^\r\n]+\r\n)*Connection: close\r\n/i;

const headerLine = (index: number): string => `X-Slow-${index}: ${"a".repeat(20)}\r\n`;

/**
 * Opens an Engine.IO long-polling session and returns the head of a POST to it that announces a
 * 1000-byte body: the server waits for that body before it answers, so only read_timeout ends it.
 */
async function slowPost(base: string, ca?: string): Promise<string> {
  const url = `${base}/socket.io/?EIO=4&transport=polling`;
  const open =
    ca === undefined
      ? await (await fetch(url)).text()
      : await new Promise<string>((resolve, reject) => {
          httpsGet(url, { ca }, (response) => {
            let text = "";
            response.setEncoding("utf8");
            response.on("data", (chunk: string) => (text += chunk));
            response.on("end", () => resolve(text));
          }).on("error", reject);
        });
  const sid = (JSON.parse(open.slice(1)) as { sid: string }).sid;
  return `POST /socket.io/?EIO=4&transport=polling&sid=${sid} HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\n`;
}

/** The body of slowPost arrives a byte at a time: cut by read_timeout, not by header_timeout, with 408. */
function expectCutAtReadTimeout(outcome: Outcome): void {
  expect(outcome.closedByServer).toBe(true);
  expect(outcome.afterMs).toBeGreaterThan(HEADER_TIMEOUT_MS + 500);
  expect(outcome.afterMs).toBeLessThan(READ_TIMEOUT_MS + 3_000);
  expect(outcome.response).toMatch(TIMED_OUT);
}

describe.each([
  ["a 2-worker cluster", "2"],
  ["a single process", "1"],
])("slow requests against %s", (_name, workers) => {
  let server: ServerProcess;
  const peers: TestPeer[] = [];

  beforeAll(async () => {
    server = await startServer({
      env: { PEER_WORKERS: workers },
      config: { header_timeout: `${HEADER_TIMEOUT_MS}ms`, read_timeout: `${READ_TIMEOUT_MS}ms` },
    });
  });
  afterAll(async () => {
    closeAll(peers);
    await server.stop();
  });

  it(`cuts ${SLOW_CLIENTS} heads sent a line at a time at header_timeout, and serves normal clients meanwhile`, async () => {
    const slow = Array.from({ length: SLOW_CLIENTS }, () => dribble(server.port, "GET /ws HTTP/1.1\r\n", headerLine));

    const health = await fetch(`${server.http}/health`);
    expect(health.status).toBe(200);
    await health.arrayBuffer();
    const ws = await registeredPeer(server, "ws");
    peers.push(ws);
    expect((await ws.request("ping", {}, ["pong"])).type).toBe("pong");
    const polling = await connectSio(server.http, { transports: ["polling"] });
    peers.push(polling);
    expect((await polling.register()).type).toBe("registered");

    const outcomes = await Promise.all(slow);
    const open = outcomes.filter((outcome) => !outcome.closedByServer);
    expect(open, "connections the server never closed").toEqual([]);
    const late = outcomes.filter((outcome) => outcome.afterMs > HEADER_TIMEOUT_MS + 3_000);
    expect(late, "connections closed well after header_timeout").toEqual([]);
    for (const outcome of outcomes) expect(outcome.response).toMatch(TIMED_OUT);

    // The peers served meanwhile are still connected and answering.
    expect((await ws.request("ping", {}, ["pong"])).type).toBe("pong");
  });

  it("cuts a body that trickles past read_timeout", async () => {
    expectCutAtReadTimeout(await dribble(server.port, await slowPost(server.http), () => "x"));
  });
});

describe("slow requests over TLS against a 2-worker cluster", () => {
  let server: ServerProcess;
  let cert: Certificate;
  const peers: TestPeer[] = [];
  const slowClients = 20;

  beforeAll(async () => {
    cert = makeCertificate();
    server = await startServer({
      env: { PEER_WORKERS: "2" },
      config: { header_timeout: `${HEADER_TIMEOUT_MS}ms`, read_timeout: `${READ_TIMEOUT_MS}ms`, tls_cert: cert.certPath, tls_key: cert.keyPath },
    });
  });
  afterAll(async () => {
    closeAll(peers);
    await server.stop();
    cert.remove();
  });

  it(`cuts ${slowClients} heads sent a line at a time at header_timeout, and serves normal clients meanwhile`, async () => {
    const slow = Array.from({ length: slowClients }, () => dribble(server.port, "GET /ws HTTP/1.1\r\n", headerLine, true));

    expect((await httpsJson(`https://127.0.0.1:${server.port}/health`, cert.ca)).status).toBe(200);
    const ws = await connectWs(`wss://127.0.0.1:${server.port}/ws`, { ca: cert.ca });
    peers.push(ws);
    expect((await ws.register()).type).toBe("registered");
    expect((await ws.request("ping", {}, ["pong"])).type).toBe("pong");

    const outcomes = await Promise.all(slow);
    expect(outcomes.filter((outcome) => !outcome.closedByServer), "connections the server never closed").toEqual([]);
    expect(outcomes.filter((outcome) => outcome.afterMs > HEADER_TIMEOUT_MS + 3_000), "connections closed well after header_timeout").toEqual([]);
    for (const outcome of outcomes) expect(outcome.response).toMatch(TIMED_OUT);
    expect((await ws.request("ping", {}, ["pong"])).type).toBe("pong");
  });

  it("cuts a body that trickles past read_timeout", async () => {
    // The session and the slow POST come from one client address, so they reach the same worker.
    expectCutAtReadTimeout(await dribble(server.port, await slowPost(`https://127.0.0.1:${server.port}`, cert.ca), () => "x", true));
  });
});
