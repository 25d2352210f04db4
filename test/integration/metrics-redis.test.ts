import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PeerPool, startNodes } from "../helpers/redis-nodes.ts";
import { startRedisServer, type RedisServer } from "../helpers/redis-server.ts";
import type { ServerProcess } from "../helpers/server-process.ts";
import { waitFor } from "../helpers/wait.ts";

/**
 * Metrics of two single-process nodes sharing one private redis-server: a signal's delivery time
 * is observed on the target's node with the stamp the sender's node put beside the packet, and
 * peer_server_redis_up follows Redis.
 */

async function adminUrl(node: ServerProcess): Promise<string> {
  const line = await waitFor(
    () => node.output.find((candidate) => candidate.includes('"admin listening"')),
    (found) => found !== undefined,
    { timeoutMs: 10_000, what: "the admin listening line" },
  );
  return `http://127.0.0.1:${(JSON.parse(line as string) as { port: number }).port}`;
}

async function scrape(url: string): Promise<string> {
  const response = await fetch(`${url}/metrics`);
  expect(response.status).toBe(200);
  return response.text();
}

/** The value of an unlabelled sample, or one with exactly `label`. */
function sample(text: string, name: string, label?: string): number | undefined {
  const prefix = label === undefined ? `${name} ` : `${name}{${label}} `;
  const line = text.split("\n").find((candidate) => candidate.startsWith(prefix));
  return line === undefined ? undefined : Number(line.slice(prefix.length));
}

describe("metrics of nodes on Redis", () => {
  let redis: RedisServer;
  let nodes: ServerProcess[];
  let urls: string[];
  const pool = new PeerPool();

  beforeAll(async () => {
    redis = await startRedisServer();
    const spec = { config: { metrics_enabled: true, metrics_port: 0 } };
    nodes = await startNodes(redis, [spec, spec]);
    urls = await Promise.all(nodes.map(adminUrl));
  }, 60_000);
  afterAll(async () => {
    pool.closeAll();
    await Promise.all((nodes ?? []).map((node) => node.stop()));
    await redis?.stop();
  });

  it("times a signal from its receipt on the sender's node to its hand-off on the target's", async () => {
    const [node0, node1] = nodes as [ServerProcess, ServerProcess];
    const namespace = "metrics-nodes";
    const a = await pool.on(node0, "ws", { namespace });
    const b = await pool.on(node1, "sio", { namespace });
    await a.next("peer_joined");
    const SIGNALS = 5;
    for (let i = 0; i < SIGNALS; i++) a.send("signal", { to: b.fingerprint, payload: { sdp: `s${i}` } });
    for (let i = 0; i < SIGNALS; i++) {
      // The client reads the signal as ever: the stamp travels beside the packet, not in it.
      expect(Object.keys(await b.next("signal")).sort()).toEqual(["from", "payload", "to", "ts", "type"]);
    }

    const [sender, target] = (await Promise.all(urls.map(scrape))) as [string, string];
    expect(sample(sender, "peer_server_messages_received_total", 'type="signal"')).toBe(SIGNALS);
    expect(sample(sender, "peer_server_signal_delivery_seconds_count")).toBe(0);
    expect(sample(target, "peer_server_messages_received_total", 'type="signal"')).toBe(0);
    expect(sample(target, "peer_server_messages_sent_total", 'type="signal"')).toBe(SIGNALS);
    expect(sample(target, "peer_server_signal_delivery_seconds_count")).toBe(SIGNALS);
    // One machine: both nodes read the same clock.
    expect(sample(target, "peer_server_signal_delivery_seconds_sum")).toBeLessThan(SIGNALS);
  });

  it("reports Redis up, then down while it is unreachable", async () => {
    for (const url of urls) expect(sample(await scrape(url), "peer_server_redis_up")).toBe(1);
    await redis.kill();
    for (const url of urls) {
      await waitFor(
        async () => sample(await scrape(url), "peer_server_redis_up"),
        (up) => up === 0,
        { timeoutMs: 15_000, intervalMs: 250, what: "peer_server_redis_up to fall to 0" },
      );
    }
    await redis.restart();
    for (const url of urls) {
      await waitFor(
        async () => sample(await scrape(url), "peer_server_redis_up"),
        (up) => up === 1,
        { timeoutMs: 15_000, intervalMs: 250, what: "peer_server_redis_up to come back to 1" },
      );
    }
  });
});
