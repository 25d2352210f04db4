import { connect as connectTcp } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeAll, connectSio, registeredPeer, type TestPeer } from "../helpers/peers.ts";
import { startServer, type ServerProcess } from "../helpers/server-process.ts";

/**
 * Slow clients against the real server: a request head that trickles in one header line at a time
 * must be cut at header_timeout, however steadily its bytes come (an idle timeout would restart on
 * every line), and a body that trickles past read_timeout must be cut too, while normal clients are
 * served. Run against a 2-worker cluster (the primary's router enforces the deadlines) and a single
 * process (Node's HTTP server does).
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

/** Sends `first` at once, then one of `line(i)` every LINE_EVERY_MS until the server closes the connection. */
function dribble(port: number, first: string, line: (index: number) => string): Promise<Outcome> {
  return new Promise((resolve) => {
    const socket = connectTcp(port, "127.0.0.1");
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
    socket.on("connect", () => {
      started = Date.now();
      socket.write(first);
    });
    socket.on("data", (chunk: Buffer) => (response += chunk.toString("latin1")));
    socket.on("error", () => undefined); // a reset after the server's answer is still a close
    socket.on("close", () => {
      clearInterval(ticker);
      clearTimeout(giveUp);
      resolve({ closedByServer: !gaveUp, afterMs: Date.now() - started, response });
    });
  });
}

const headerLine = (index: number): string => `X-Slow-${index}: ${"a".repeat(20)}\r\n`;

describe.each([
  ["a 2-worker cluster", "2"],
  ["a single process", "1"],
])("slow requests against %s", (_name, workers) => {
  let server: ServerProcess;
  const peers: TestPeer[] = [];
  const clustered = workers !== "1";

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
    for (const outcome of outcomes) expect(outcome.response).toMatch(/^HTTP\/1\.1 408 /);
    if (clustered) {
      for (const outcome of outcomes) expect(outcome.response).toContain("\r\nConnection: close\r\n");
    }

    // The peers served meanwhile are still connected and answering.
    expect((await ws.request("ping", {}, ["pong"])).type).toBe("pong");
  });

  it("cuts a body that trickles past read_timeout", async () => {
    const head = "POST /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\n";
    const outcome = await dribble(server.port, head, () => "x");
    expect(outcome.closedByServer).toBe(true);
    // Cut by read_timeout: not by header_timeout (the head was complete at once), and not much later.
    expect(outcome.afterMs).toBeGreaterThan(HEADER_TIMEOUT_MS + 500);
    expect(outcome.afterMs).toBeLessThan(READ_TIMEOUT_MS + 3_000);
    // The router answers 408 itself; a single process may have answered the request before its body was in.
    if (clustered) expect(outcome.response).toMatch(/^HTTP\/1\.1 408 /);
  });
});
