import { readdirSync, readFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { networkInterfaces } from "node:os";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { configFiles } from "../helpers/config-files.ts";
import { DialectClient } from "../helpers/dialect-client.ts";
import { closeAll, connectWs, registeredPeer, type Envelope, type TestPeer, type Transport } from "../helpers/peers.ts";
import { freePort } from "../helpers/ports.ts";
import { getJson, runToExit, startServer, type ServerProcess } from "../helpers/server-process.ts";
import { waitFor } from "../helpers/wait.ts";

/**
 * Prometheus metrics on the admin listener, against real processes: exact counts after known
 * traffic on a 2-worker cluster (one scrape of the primary sees both workers) and on a single
 * process; where the listener binds, its token, a port that is taken, and nothing listening when
 * metrics are off.
 */

const { configFile } = configFiles("peer-metrics-");
const TOKEN = "metrics-s3cret";

/** The admin listener's address from its start-up line (`admin listening`, logged after `listening`). */
async function adminAddress(server: ServerProcess): Promise<{ host: string; port: number; url: string }> {
  const line = await waitFor(
    () => server.output.find((candidate) => candidate.includes('"admin listening"')),
    (found) => found !== undefined,
    { timeoutMs: 10_000, what: "the admin listening line" },
  );
  const { host, port } = JSON.parse(line as string) as { host: string; port: number };
  return { host, port, url: `http://127.0.0.1:${port}` };
}

async function scrape(url: string, headers: Record<string, string> = {}): Promise<string> {
  const response = await fetch(`${url}/metrics`, { headers });
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toContain("text/plain");
  return response.text();
}

/** One sample of a scrape: `name{labels} value`, labels matched exactly, in any order; undefined when absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const wanted = JSON.stringify(Object.entries(labels).sort());
  for (const line of text.split("\n")) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (match === null || match[1] !== name) continue;
    const found: [string, string][] = [];
    for (const [, key, value] of (match[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) found.push([key as string, value as string]);
    if (JSON.stringify(found.sort()) === wanted) return Number(match[3]);
  }
  return undefined;
}

/** The label sets a metric has samples for, e.g. every `worker` of a default process metric. */
function labelValues(text: string, name: string, label: string): string[] {
  const values = new Set<string>();
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`)) continue;
    const value = new RegExp(`${label}="([^"]*)"`).exec(line)?.[1];
    if (value !== undefined) values.add(value);
  }
  return [...values].sort();
}

/** Sends `count` pings on /ws back to back and collects one answer per ping (pong, or error 429). */
async function pingBurst(peer: TestPeer, count: number): Promise<Envelope[]> {
  const replies: Promise<Envelope>[] = [];
  for (let i = 0; i < count; i++) replies.push(peer.next((m) => m.type === "pong" || m.type === "error"));
  for (let i = 0; i < count; i++) peer.send("ping");
  return Promise.all(replies);
}

/** Processes whose command line holds `marker` (a test's config path): what a failed start left running. */
function processesWith(marker: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, "utf8").includes(marker)) pids.push(Number(entry));
    } catch {
      /* gone meanwhile */
    }
  }
  return pids;
}

/** Holds a loopback port for the test, as another program would. */
async function occupy(): Promise<{ port: number; release: () => Promise<void> }> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (typeof address !== "object" || address === null) throw new Error("no port");
  return { port: address.port, release: () => new Promise((resolve) => server.close(() => resolve())) };
}

const RATE = { rate_limit_per_sec: 20, rate_limit_burst: 40 };

describe("metrics on a 2-worker cluster", () => {
  let server: ServerProcess;
  let admin: { host: string; port: number; url: string };
  const open: TestPeer[] = [];

  beforeAll(async () => {
    server = await startServer({ config: { metrics_enabled: true, metrics_port: 0, ...RATE }, env: { PEER_WORKERS: "2" } });
    admin = await adminAddress(server);
  });
  afterAll(async () => {
    closeAll(open);
    await server.stop();
  });

  it("listens on 127.0.0.1 by default, on the port its log line names; the public port serves no /metrics", async () => {
    expect(admin.host).toBe("127.0.0.1");
    expect(admin.port).not.toBe(server.port);
    expect((await fetch(`${server.http}/metrics`)).status).toBe(404);
    // Not on the machine's other addresses.
    const external = Object.values(networkInterfaces())
      .flat()
      .find((address) => address !== undefined && address.family === "IPv4" && !address.internal);
    if (external !== undefined) await expect(fetch(`http://${external.address}:${admin.port}/metrics`)).rejects.toThrow();
  });

  it("one scrape counts the whole machine's traffic exactly and shows each worker's process metrics", async () => {
    const peer = async (transport: Transport): Promise<TestPeer> => {
      const created = await registeredPeer(server, transport);
      open.push(created);
      return created;
    };
    // The primary hands each new connection to the worker with the fewest: on this fresh cluster
    // a and b land on different workers, which /stats shows by transport.
    const a = await peer("ws");
    const b = await peer("sio");
    const placement = (await getJson(`${server.http}/stats`)).body["workers"] as { connections: Record<string, number> }[];
    expect(placement.map((worker) => [worker.connections["ws"], worker.connections["socket.io"]]).sort()).toEqual([
      [0, 1],
      [1, 0],
    ]);
    const namespace = "metrics-cross";
    await a.join(namespace);
    await b.join(namespace);
    await a.next("peer_joined");

    const SIGNALS = 10;
    for (let i = 0; i < SIGNALS; i++) a.send("signal", { to: b.fingerprint, payload: { signal_type: "offer", sdp: `s${i}` } });
    for (let i = 0; i < SIGNALS; i++) await b.next("signal");

    const bad = await connectWs(server.ws);
    open.push(bad);
    bad.socket.send("{not json");
    expect((await bad.next("error")).payload).toMatchObject({ code: 400 });

    const PINGS = 60;
    const noisy = await peer("ws");
    const registrations = 3;
    const replies = await pingBurst(noisy, PINGS);
    const limited = replies.filter((reply) => reply.type === "error").length;
    expect(replies.filter((reply) => reply.type === "error").every((reply) => reply.payload?.code === 429)).toBe(true);
    expect(limited).toBeGreaterThan(0);

    const text = await scrape(admin.url);
    // The gauges sum both workers: a, noisy and bad over /ws, b over Socket.IO.
    expect(sample(text, "peer_server_connections", { transport: "ws" })).toBe(3);
    expect(sample(text, "peer_server_connections", { transport: "socket.io" })).toBe(1);
    const count = (name: string, labels: Record<string, string> = {}): number | undefined => sample(text, name, labels);
    expect(count("peer_server_peers")).toBe(3);
    expect(count("peer_server_connections", { transport: "p2p" })).toBe(0);

    expect(count("peer_server_messages_received_total", { type: "register" })).toBe(registrations);
    expect(count("peer_server_messages_received_total", { type: "join" })).toBe(2);
    expect(count("peer_server_messages_received_total", { type: "signal" })).toBe(SIGNALS);
    expect(count("peer_server_messages_received_total", { type: "ping" })).toBe(PINGS);
    expect(count("peer_server_messages_received_total", { type: "other" })).toBe(1);
    expect(count("peer_server_messages_received_total", { type: "relay" })).toBe(0);

    expect(count("peer_server_messages_sent_total", { type: "registered" })).toBe(registrations);
    expect(count("peer_server_messages_sent_total", { type: "peer_list" })).toBe(2);
    expect(count("peer_server_messages_sent_total", { type: "peer_joined" })).toBe(1);
    expect(count("peer_server_messages_sent_total", { type: "signal" })).toBe(SIGNALS);
    expect(count("peer_server_messages_sent_total", { type: "pong" })).toBe(PINGS - limited);
    expect(count("peer_server_messages_sent_total", { type: "error" })).toBe(1 + limited);
    expect(count("peer_server_messages_sent_total", { type: "ok" })).toBe(0);

    expect(count("peer_server_errors_total", { code: "400" })).toBe(1);
    expect(count("peer_server_errors_total", { code: "429" })).toBe(limited);
    expect(count("peer_server_rate_limited_total")).toBe(limited);
    expect(count("peer_server_slow_consumer_disconnects_total")).toBe(0);

    // Every signal was timed from its receipt on a's worker to its hand-off on b's, over the direct link.
    expect(count("peer_server_signal_delivery_seconds_count")).toBe(SIGNALS);
    expect(count("peer_server_signal_delivery_seconds_bucket", { le: "+Inf" })).toBe(SIGNALS);
    expect(count("peer_server_signal_delivery_seconds_sum")).toBeLessThan(SIGNALS * 1);
    expect(count("peer_server_request_duration_seconds_count", { type: "signal" })).toBe(SIGNALS);
    expect(count("peer_server_request_duration_seconds_count", { type: "ping" })).toBe(PINGS);
    expect(count("peer_server_request_duration_seconds_count", { type: "register" })).toBe(registrations);
    expect(count("peer_server_request_duration_seconds_count", { type: "other" })).toBe(1);
    // Without Redis there is no Redis to report on.
    expect(text).not.toContain("peer_server_redis_up");

    // Each worker's own process metrics, told apart by their `worker` label; the primary's under its own prefix.
    for (const name of ["process_cpu_user_seconds_total", "process_resident_memory_bytes", "nodejs_heap_size_used_bytes", "nodejs_eventloop_lag_p99_seconds", "nodejs_version_info"]) {
      expect(labelValues(text, name, "worker"), name).toEqual(["0", "1"]);
    }
    expect(count("peer_server_primary_process_resident_memory_bytes")).toBeGreaterThan(0);
    // One HELP per metric: the exposition stays valid with both workers merged.
    const helps = text.split("\n").filter((line) => line.startsWith("# HELP "));
    expect(new Set(helps.map((line) => line.split(" ")[2])).size).toBe(helps.length);
    // prom-client's IPC messages pass the project's guards without a word, both ways.
    expect(server.output.filter((line) => line.includes("dropped a malformed message"))).toEqual([]);
  });
});

describe("metrics in a single process, with admin_token", () => {
  let server: ServerProcess;
  let admin: { url: string; port: number };
  const auth = { authorization: `Bearer ${TOKEN}` };

  beforeAll(async () => {
    server = await startServer({ config: { metrics_enabled: true, metrics_port: 0, admin_token: TOKEN, ...RATE } });
    admin = await adminAddress(server);
  });
  afterAll(async () => {
    await server.stop();
  });

  it("answers 401 without the token or with another, 200 with it", async () => {
    expect((await fetch(`${admin.url}/metrics`)).status).toBe(401);
    expect((await fetch(`${admin.url}/metrics`, { headers: { authorization: "Bearer wrong" } })).status).toBe(401);
    expect((await fetch(`${admin.url}/other`)).status).toBe(401);
    expect((await fetch(`${admin.url}/metrics`, { headers: auth })).status).toBe(200);
  });

  it("counts the process's traffic, a dialect's requests under the core type they become", async () => {
    const namespace = "metrics-single";
    const a = await registeredPeer(server, "ws", { namespace });
    const b = await registeredPeer(server, "sio", { namespace });
    try {
      await a.next("peer_joined");
      for (let i = 0; i < 5; i++) a.send("signal", { to: b.fingerprint, payload: { sdp: `s${i}` } });
      a.send("relay", { to: b.fingerprint, payload: { n: 1 } });
      for (let i = 0; i < 5; i++) await b.next("signal");
      await b.next("relay");
      // Acknowledged requests without a reply of their own get `ok`.
      expect((await b.request("relay", { to: a.fingerprint, payload: { n: 2 } })).type).toBe("ok");
      await a.next("relay");

      const p2p = await DialectClient.open(server.ws.replace(/\/ws$/, "/p2p/ws"));
      p2p.send({ type: "IDENTIFY", username: "metrics-user" });
      await p2p.next((message) => message["type"] === "AUTH_SUCCESS");

      const text = await scrape(admin.url, auth);
      expect(sample(text, "peer_server_messages_received_total", { type: "register" })).toBe(3);
      expect(sample(text, "peer_server_messages_received_total", { type: "join" })).toBe(2);
      expect(sample(text, "peer_server_messages_received_total", { type: "signal" })).toBe(5);
      expect(sample(text, "peer_server_messages_received_total", { type: "relay" })).toBe(2);
      expect(sample(text, "peer_server_messages_sent_total", { type: "signal" })).toBe(5);
      expect(sample(text, "peer_server_messages_sent_total", { type: "relay" })).toBe(2);
      expect(sample(text, "peer_server_messages_sent_total", { type: "ok" })).toBe(1);
      expect(sample(text, "peer_server_signal_delivery_seconds_count")).toBe(7);
      expect(sample(text, "peer_server_connections", { transport: "ws" })).toBe(1);
      expect(sample(text, "peer_server_connections", { transport: "socket.io" })).toBe(1);
      expect(sample(text, "peer_server_connections", { transport: "p2p" })).toBe(1);
      expect(sample(text, "peer_server_peers")).toBe(3);
      // One process: its default metrics carry no worker label.
      expect(sample(text, "process_resident_memory_bytes")).toBeGreaterThan(0);
      expect(text).not.toContain("peer_server_primary_");
      p2p.socket.close();
    } finally {
      closeAll([a, b]);
    }
  });

  it("closes the admin listener with the process's shutdown", async () => {
    expect(await server.stop()).toBe(0);
    await expect(fetch(`${admin.url}/metrics`, { headers: auth })).rejects.toThrow();
  });
});

describe("start-up", () => {
  it("with metrics_enabled false nothing listens on metrics_port", async () => {
    const port = await freePort();
    const server = await startServer({ config: { metrics_enabled: false, metrics_port: port } });
    try {
      expect(server.output.some((line) => line.includes("admin listening"))).toBe(false);
      await expect(fetch(`http://127.0.0.1:${port}/metrics`)).rejects.toThrow();
    } finally {
      await server.stop();
    }
  });

  it.each([1, 2])("a metrics_port in use stops start-up naming it, with the main port's exit code (%i workers)", async (workers) => {
    const busy = await occupy();
    try {
      const mainPortTaken = configFile({ host: "127.0.0.1", port: busy.port });
      const metricsPortTaken = configFile({ host: "127.0.0.1", port: 0, metrics_enabled: true, metrics_port: busy.port });
      const env = { PEER_WORKERS: String(workers) };
      const main = await runToExit(["--config", mainPortTaken], env);
      const metrics = await runToExit(["--config", metricsPortTaken], env);
      expect(main.code).toBe(1);
      expect(main.output).toContain(`cannot listen on 127.0.0.1:${busy.port}`);
      expect(metrics.code).toBe(main.code);
      expect(metrics.output).toContain(`cannot listen on 127.0.0.1:${busy.port} (metrics_port)`);
      expect(metrics.output).not.toContain('"admin listening"');
      // A cluster primary leaves no worker behind.
      await waitFor(() => processesWith(metricsPortTaken), (pids) => pids.length === 0, { timeoutMs: 5_000, what: "no process of the failed start left" });
    } finally {
      await busy.release();
    }
  });
});
