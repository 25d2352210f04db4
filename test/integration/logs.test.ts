import { randomBytes, randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DialectClient } from "../helpers/dialect-client.ts";
import { connectSio, connectWs, type Envelope, type TestPeer } from "../helpers/peers.ts";
import { startServer, type ServerProcess } from "../helpers/server-process.ts";
import { waitFor } from "../helpers/wait.ts";

/** One log line, parsed. */
type Line = Record<string, unknown> & { msg?: string; level?: number };

/** Every JSON line of a server's output so far. */
function logLines(server: ServerProcess): Line[] {
  const lines: Line[] = [];
  for (const raw of server.output) {
    if (!raw.startsWith("{")) continue;
    lines.push(JSON.parse(raw) as Line);
  }
  return lines;
}

/**
 * The keys that occur twice in one object of a JSON text, at any depth. JSON.parse keeps the last
 * of them silently, so the text itself is scanned.
 */
function duplicateKeys(json: string): string[] {
  /** One entry per open object or array: the keys seen so far (objects) or undefined (arrays). */
  const stack: (Set<string> | undefined)[] = [];
  let expectKey = false;
  const repeated: string[] = [];
  for (let i = 0; i < json.length; i++) {
    const char = json[i];
    if (char === "{") {
      stack.push(new Set());
      expectKey = true;
    } else if (char === "[") {
      stack.push(undefined);
      expectKey = false;
    } else if (char === "}" || char === "]") {
      stack.pop();
      expectKey = false;
    } else if (char === ",") {
      expectKey = stack[stack.length - 1] !== undefined;
    } else if (char === '"') {
      let end = i + 1;
      while (json[end] !== '"') end += json[end] === "\\" ? 2 : 1;
      const token = JSON.parse(json.slice(i, end + 1)) as string;
      const keys = stack[stack.length - 1];
      if (expectKey && keys !== undefined) {
        if (keys.has(token)) repeated.push(token);
        keys.add(token);
        expectKey = false;
      }
      i = end;
    }
  }
  return repeated;
}

/** Every raw JSON line with a key twice, with the keys. */
const linesWithDuplicateKeys = (server: ServerProcess): string[] =>
  server.output.filter((raw) => raw.startsWith("{") && duplicateKeys(raw).length > 0).map((raw) => `${duplicateKeys(raw).join(",")}: ${raw}`);

/** Waits for a line matching `match` and returns every line so far that does. */
async function linesOf(server: ServerProcess, match: (line: Line) => boolean, what: string, count = 1): Promise<Line[]> {
  return waitFor(
    () => logLines(server).filter(match),
    (lines) => lines.length >= count,
    { timeoutMs: 5_000, intervalMs: 50, what },
  );
}

/** Sends `count` pings back to back over /ws and collects one reply per ping. */
async function pingBurst(peer: TestPeer, count: number): Promise<Envelope[]> {
  const replies: Promise<Envelope>[] = [];
  for (let i = 0; i < count; i++) replies.push(peer.next((m) => m.type === "pong" || (m.type === "error" && m.payload?.["ref"] === "ping"), 15_000));
  for (let i = 0; i < count; i++) peer.send("ping");
  return Promise.all(replies);
}

const SECRETS = {
  redis: `redis-pw-${randomUUID()}`,
  turn: `turn-secret-${randomUUID()}`,
  pigeon: `pigeon-token-${randomUUID()}`,
};
/** In the payload of a refused signal: no line may carry it. */
const PAYLOAD_MARKER = `payload-${randomUUID()}`;
const BURST = 200;

describe("the duplicate-key scan of this file", () => {
  it("finds a key twice at any depth, and only keys", () => {
    expect(duplicateKeys('{"pid":1,"a":{"b":1,"c":"b"},"pid":2}')).toEqual(["pid"]);
    expect(duplicateKeys('{"a":[{"x":1},{"x":2}],"b":{"x":"\\"x\\":1","y":["x","x"]}}')).toEqual([]);
    expect(duplicateKeys('{"a":{"k":1,"k":2}}')).toEqual(["k"]);
  });
});

describe.each(["info", "debug"] as const)("logs at %s", (level) => {
  let server: ServerProcess;
  const debug = level === "debug";

  beforeAll(async () => {
    server = await startServer({
      config: {
        log_level: level,
        rate_limit_per_sec: 1,
        rate_limit_burst: 5,
        redis_password: SECRETS.redis,
        turn_secret: SECRETS.turn,
        turn_urls: ["turn:127.0.0.1:3478"],
        pigeon_auth_token: SECRETS.pigeon,
      },
      env: { PEER_LOG_LEVEL: level },
    });
  });
  afterAll(async () => {
    await server.stop();
  });

  it("one /ws connection's life: opened, registered, refusals, a sampled rate limit, replaced (4001), closed; one id on every line", async () => {
    const publicKey = `key-${randomUUID()}`;
    const a = await connectWs(server.ws);
    const registered = await a.register({ publicKey, alias: `logs-${level}` });
    expect(registered.type).toBe("registered");
    a.sendRaw("{not json");
    expect((await a.next("error")).payload).toMatchObject({ code: 400 });
    const refused = await a.request("signal", { to: "f".repeat(64), payload: { sdp: PAYLOAD_MARKER } });
    expect(refused.payload).toMatchObject({ code: 404, ref: "signal" });
    // The budget (burst 5) is two tokens from empty: nearly all of the burst is refused.
    const replies = await pingBurst(a, BURST);
    const limited = replies.filter((m) => m.type === "error").length;
    expect(limited).toBeGreaterThan(BURST - 10);

    const [{ conn }] = (await linesOf(server, (l) => l.msg === "registered" && l["fingerprint"] === a.fingerprint, "the registered line")) as [Line];
    expect(typeof conn).toBe("string");

    // The same key connects again: it takes over, and its first rate-limited line reports what was
    // suppressed of the first connection's (it inherits the empty budget).
    const b = await connectWs(server.ws);
    const closedA = a.closed;
    expect((await b.register({ publicKey })).type).toBe("registered");
    expect((await closedA).code).toBe(4001);
    const secondBurst = await pingBurst(b, 20);
    expect(secondBurst.some((m) => m.type === "error")).toBe(true);
    const closedB = b.closed;
    b.socket.close(1000, "bye");
    await closedB;

    const [closedLine] = (await linesOf(server, (l) => l.msg === "connection closed" && l["conn"] === conn, "the closed line of the first connection")) as [Line];
    const [takeover] = (await linesOf(server, (l) => l.msg === "registered" && l["fingerprint"] === a.fingerprint && l["takeover"] === true, "the takeover line")) as [Line];
    const connB = takeover["conn"];
    const [closedLineB] = (await linesOf(server, (l) => l.msg === "connection closed" && l["conn"] === connB, "the closed line of the second connection")) as [Line];

    const mine = logLines(server).filter((l) => l["conn"] === conn);
    const byMsg = (msg: string): Line[] => mine.filter((l) => l.msg === msg);
    expect(byMsg("connection opened")).toEqual([expect.objectContaining({ level: 30, transport: "ws", address: "127.0.0.1" })]);
    expect(byMsg("registered")).toEqual([expect.objectContaining({ level: 30, fingerprint: a.fingerprint, alias: `logs-${level}`, takeover: false })]);
    expect(closedLine).toMatchObject({ level: 30, transport: "ws", address: "127.0.0.1", fingerprint: a.fingerprint, code: 4001, by: "server", rateLimited: limited });
    expect(closedLine["durationMs"]).toEqual(expect.any(Number));
    expect(closedLine["durationMs"] as number).toBeGreaterThanOrEqual(0);
    expect(takeover).toMatchObject({ takeover: true, replacedConn: conn });
    expect(closedLineB).toMatchObject({ transport: "ws", code: 1000, reason: "bye", by: "client", fingerprint: a.fingerprint });

    // Sampled: one warn line for a whole burst of 429s on one connection (one per 10 s at most).
    const warned = byMsg("rate limited");
    expect(warned).toEqual([expect.objectContaining({ level: 40, ref: "ping", transport: "ws", suppressed: 0 })]);
    // The next line of its kind, the second connection's first, counts every 429 that had none.
    const warnedB = logLines(server).filter((l) => l["conn"] === connB && l.msg === "rate limited");
    expect(warnedB).toEqual([expect.objectContaining({ level: 40, suppressed: limited - 1 })]);

    const refusals = byMsg("request refused");
    if (debug) {
      expect(refusals).toContainEqual(expect.objectContaining({ level: 20, code: 400, reason: "invalid JSON" }));
      expect(refusals).toContainEqual(expect.objectContaining({ level: 20, code: 404, ref: "signal" }));
      expect(refusals.filter((l) => l["code"] === 429 && l["ref"] === "ping")).toHaveLength(limited);
    } else {
      expect(refusals).toEqual([]);
    }
    expect(server.output.join("\n")).not.toContain(PAYLOAD_MARKER);
  });

  it("Socket.IO and dialect connections are logged with their transport", async () => {
    const sio = await connectSio(server.http);
    expect((await sio.register()).type).toBe("registered");
    const sioConn = sio.socket.id;
    const sioClosed = sio.closed;
    sio.close();
    await sioClosed;
    const [sioOpened] = (await linesOf(server, (l) => l.msg === "connection opened" && l["conn"] === sioConn, "the Socket.IO opened line")) as [Line];
    expect(sioOpened).toMatchObject({ transport: "socket.io", address: expect.stringContaining("127.0.0.1") });
    const [sioClosedLine] = (await linesOf(server, (l) => l.msg === "connection closed" && l["conn"] === sioConn, "the Socket.IO closed line")) as [Line];
    expect(sioClosedLine).toMatchObject({ transport: "socket.io", fingerprint: sio.fingerprint, reason: "client namespace disconnect", by: "client" });

    const before = logLines(server).length;
    const peerId = randomBytes(20).toString("hex");
    const pigeon = await DialectClient.open(`${server.ws.replace(/\/ws$/, "/pigeon")}?peerId=${peerId}&token=${encodeURIComponent(SECRETS.pigeon)}`, {
      headers: { Authorization: `Bearer ${SECRETS.pigeon}` },
    });
    pigeon.socket.close(1000);
    await pigeon.closed;
    const [pigeonClosed] = (await linesOf(server, (l) => l.msg === "connection closed" && l["transport"] === "pigeon", "the pigeon closed line")) as [Line];
    const pigeonLines = logLines(server)
      .slice(before)
      .filter((l) => l["conn"] === pigeonClosed["conn"]);
    expect(pigeonLines.map((l) => l.msg)).toEqual(expect.arrayContaining(["connection opened", "connection closed"]));
  });

  it("no line has a key twice, and no secret appears anywhere in the output", () => {
    expect(linesWithDuplicateKeys(server)).toEqual([]);
    const output = server.output.join("\n");
    for (const secret of Object.values(SECRETS)) expect(output).not.toContain(secret);
  });
});

describe("logs of a 2-worker cluster", () => {
  let server: ServerProcess;

  beforeAll(async () => {
    server = await startServer({ config: { turn_secret: SECRETS.turn, turn_urls: ["turn:127.0.0.1:3478"] }, env: { PEER_WORKERS: "2", PEER_LOG_LEVEL: "info" } });
  });
  afterAll(async () => {
    await server.stop();
  });

  it("worker lifecycle and connection lines have no key twice; the worker's pid is workerPid", async () => {
    const ready = await linesOf(server, (l) => l.msg === "worker ready", "two worker ready lines", 2);
    const primaryPid = server.process.pid;
    for (const line of ready) {
      expect(line).toMatchObject({ role: "primary", pid: primaryPid, workerPid: expect.any(Number), nodeId: expect.any(String) });
      expect(line["workerPid"]).not.toBe(primaryPid);
    }
    const peer = await connectWs(server.ws);
    expect((await peer.register()).type).toBe("registered");
    const closed = peer.closed;
    peer.close();
    await closed;
    const [line] = (await linesOf(server, (l) => l.msg === "connection closed" && l["fingerprint"] === peer.fingerprint, "the worker's closed line")) as [Line];
    expect(line).toMatchObject({ worker: expect.any(Number), transport: "ws" });
    expect(linesWithDuplicateKeys(server)).toEqual([]);
    expect(server.output.join("\n")).not.toContain(SECRETS.turn);
  });
});
