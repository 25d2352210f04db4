import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeAll, connectSio, connectWs, type TestPeer } from "../helpers/peers.ts";
import { getJson, startServer, type ServerProcess } from "../helpers/server-process.ts";
import { waitFor } from "../helpers/wait.ts";

/**
 * max_peers counts every connection of the machine: raw and Socket.IO, registered or not, Engine.IO
 * long-polling sessions that never connect to Socket.IO included, across all workers of a cluster.
 */

/** Opens an Engine.IO long-polling session (the handshake only) and returns its sid. */
async function pollingSession(server: ServerProcess): Promise<string> {
  const response = await fetch(`${server.http}/socket.io/?EIO=4&transport=polling`);
  const text = await response.text();
  expect(response.status, text).toBe(200);
  const open = JSON.parse(text.slice(1)) as { sid: string };
  return open.sid;
}

/** Whether a polling session is still known to the server (a poll of a closed one is answered 400). */
async function sessionAlive(server: ServerProcess, sid: string): Promise<boolean> {
  const controller = new AbortController();
  // A live session holds the poll open until it has something to send: a short wait tells.
  const timer = setTimeout(() => controller.abort(), 300);
  try {
    const response = await fetch(`${server.http}/socket.io/?EIO=4&transport=polling&sid=${sid}`, { signal: controller.signal });
    await response.text();
    return response.status === 200;
  } catch {
    return true; // still held open: alive
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves "refused" if the peer gets the server-full notice, "admitted" if nothing comes within `ms`. */
async function verdict(peer: TestPeer, ms = 1_000): Promise<"refused" | "admitted"> {
  try {
    const notice = await peer.next("error", ms);
    expect(notice.payload).toMatchObject({ code: 503, close_code: 1013 });
    return "refused";
  } catch {
    return "admitted";
  }
}

/** Open connections per transport, as /stats counts them (over every worker). */
async function connections(server: ServerProcess): Promise<Record<string, number>> {
  return (await getJson(`${server.http}/stats`)).body["connections"] as Record<string, number>;
}

describe.each([
  { name: "one process", workers: "1" },
  { name: "a cluster of 2 workers", workers: "2" },
])("max_peers across $name", ({ workers }) => {
  const MAX_PEERS = 20;
  let server: ServerProcess;

  beforeAll(async () => {
    server = await startServer({ env: { PEER_WORKERS: workers }, config: { max_peers: MAX_PEERS } });
  }, 30_000);
  afterAll(async () => {
    await server.stop();
  });

  it("admits exactly max_peers of many unregistered /ws connections opened at once", async () => {
    const peers = await Promise.all(Array.from({ length: 2 * MAX_PEERS }, () => connectWs(server.ws)));
    try {
      const verdicts = await Promise.all(peers.map((peer) => verdict(peer)));
      expect(verdicts.filter((v) => v === "admitted")).toHaveLength(MAX_PEERS);
      const refused = peers.filter((_, index) => verdicts[index] === "refused");
      for (const peer of refused) expect((await peer.closed).code).toBe(1013);
    } finally {
      closeAll(peers);
      // The primary learns of closed connections from the workers' load reports (every second).
      await waitFor(
        () => connections(server),
        (byTransport) => Object.values(byTransport).every((count) => count === 0),
        { timeoutMs: 10_000, intervalMs: 100, what: "/stats to count no connection" },
      );
      await new Promise((resolve) => setTimeout(resolve, 1_500));
    }
  });

  it("counts Engine.IO long-polling sessions that never connect to Socket.IO", async () => {
    const sids: string[] = [];
    for (let i = 0; i < MAX_PEERS; i++) sids.push(await pollingSession(server));
    const ws = await connectWs(server.ws);
    const sio = await connectSio(server.http);
    try {
      expect(await verdict(ws)).toBe("refused");
      expect(await verdict(sio)).toBe("refused");
      // One more polling session is let through the handshake but closed unless it connects.
      const extra = await pollingSession(server);
      await new Promise((resolve) => setTimeout(resolve, 2_500));
      expect(await sessionAlive(server, extra)).toBe(false);
      expect(await sessionAlive(server, sids[0] as string)).toBe(true);
    } finally {
      closeAll([ws, sio]);
    }
  });
});
