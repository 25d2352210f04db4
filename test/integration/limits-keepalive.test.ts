import type { Socket } from "socket.io-client";
import type WebSocket from "ws";
import { describe, expect, it } from "vitest";
import { connectWs, TRANSPORTS, type TestPeer, type Transport } from "../helpers/peers.ts";
import { useServer } from "../helpers/use-server.ts";
import { waitFor } from "../helpers/wait.ts";

const PING_INTERVAL_MS = 200;
const PONG_WAIT_MS = 600;
// A closed peer departs at once here (resume_grace 0): resume has its own tests (resume.test.ts).
const fixture = useServer({ config: { ping_interval: `${PING_INTERVAL_MS}ms`, pong_wait: `${PONG_WAIT_MS}ms`, resume_grace: 0 } });

/**
 * Server pings that span twice pong_wait: the server pings each connection once per interval, so
 * a client that has heard this many has been connected for longer than that. When each ping goes
 * out and who is dropped when is the keepalive's own unit test (test/unit/keepalive.test.ts).
 */
const PINGS_OVER_TWO_PONG_WAITS = (2 * PONG_WAIT_MS) / PING_INTERVAL_MS + 1;
/** Deadline for hearing that many pings: generous, never waited out when the server pings on time. */
const PINGS_TIMEOUT_MS = 4 * PINGS_OVER_TWO_PONG_WAITS * PING_INTERVAL_MS;

const peer = (transport: Transport, namespace?: string): Promise<TestPeer> => fixture.peer(transport, { namespace });

/** Records whether a peer's connection has closed, without waiting for it. */
function watchClosed(peer: TestPeer): () => boolean {
  let closed = false;
  void peer.closed.then(() => (closed = true));
  return () => closed;
}

describe("keepalive: ping_interval 200ms, pong_wait 600ms", () => {
  it("a raw /ws client that never answers pings is dropped and the others get peer_left", async () => {
    const ns = "keepalive-silent-ws";
    const silent = fixture.track(await connectWs(fixture.server.ws, { autoPong: false }));
    expect((await silent.register()).type).toBe("registered");
    await silent.join(ns);
    const ws = await peer("ws", ns);
    const sio = await peer("sio", ns);

    const closed = await silent.closed;
    // Terminated, not closed politely: the server does not wait for a handshake from a dead peer.
    expect(closed.code).toBe(1006);
    expect(silent.pings).toBeGreaterThan(0);
    for (const other of [ws, sio]) {
      expect(await other.next("peer_left", 3_000)).toMatchObject({ from: silent.fingerprint, namespace: ns });
    }
    expect((await ws.request("discover", { payload: { namespace: ns } }, ["peer_list"])).payload?.["total"]).toBe(2);
  });

  it("a Socket.IO client whose socket stops reading is dropped and the others get peer_left", async () => {
    const ns = "keepalive-silent-sio";
    const silent = await peer("sio", ns);
    const other = await peer("ws", ns);
    const engine = (silent as unknown as { socket: Socket }).socket.io.engine as unknown as { transport: { ws: WebSocket } };
    const tcp = (engine.transport.ws as unknown as { _socket: { pause(): void; destroy(): void } })._socket;
    tcp.pause();
    try {
      expect(await other.next("peer_left", 3_000)).toMatchObject({ from: silent.fingerprint, namespace: ns });
      expect((await other.request("discover", { payload: { namespace: ns } }, ["peer_list"])).payload?.["total"]).toBe(1);
    } finally {
      // A paused socket can never finish a close handshake; drop it so it cannot hold the server open.
      tcp.destroy();
    }
  });

  it("normal clients of both transports that send nothing stay connected across several intervals", async () => {
    const ns = "keepalive-normal";
    const quiet = [await peer("ws", ns), await peer("sio", ns)];
    const watcher = await peer("ws", ns);
    const closedFlags = quiet.map(watchClosed);
    // Both answer the server's pings by themselves (ws auto-pong, Engine.IO's pong) and send nothing else.
    await waitFor(
      () => quiet.map((p, index) => ({ pings: p.pings, closed: closedFlags[index]?.() })),
      (states) => states.some((state) => state.closed) || states.every((state) => state.pings >= PINGS_OVER_TWO_PONG_WAITS),
      { timeoutMs: PINGS_TIMEOUT_MS, what: `${PINGS_OVER_TWO_PONG_WAITS} server pings on each quiet client` },
    );
    expect(closedFlags.map((isClosed) => isClosed())).toEqual([false, false]);
    expect(await watcher.nothing("peer_left", 10)).toBe(true);
    for (const p of quiet) {
      // Registered in time: no register-timeout notice either.
      expect(await p.nothing("error", 10)).toBe(true);
      expect((await p.request("ping", {}, ["pong"])).type).toBe("pong");
    }
    const list = await watcher.request("discover", { payload: { namespace: ns } }, ["peer_list"]);
    expect(list.payload?.["total"]).toBe(3);
  });

  it("a raw /ws client that ignores pings but keeps sending messages counts as alive", async () => {
    const chatty = fixture.track(await connectWs(fixture.server.ws, { autoPong: false }));
    await chatty.register();
    const isClosed = watchClosed(chatty);
    // One message after each server ping it ignores; 8 pings span more than twice pong_wait.
    for (let heard = 1; heard <= 8; heard++) {
      await waitFor(() => chatty.pings, (count) => count >= heard || isClosed(), { timeoutMs: PINGS_TIMEOUT_MS, what: `server ping ${heard}` });
      expect(isClosed()).toBe(false);
      expect((await chatty.request("ping", {}, ["pong"])).type).toBe("pong");
    }
    expect(isClosed()).toBe(false);
  });
});

describe.each(TRANSPORTS)("register timeout (pong_wait 600ms) over %s", (transport) => {
  it("a connection that never registers gets error 400 with close_code 1008 and is closed", async () => {
    const idle = await fixture.connect(transport);
    const notice = await idle.next("error", 3_000);
    expect(notice.payload).toMatchObject({ code: 400, close_code: 1008 });
    const closed = await idle.closed;
    if (transport === "ws") expect(closed.code).toBe(1008);
    else expect(closed.code).toBe("io server disconnect");
  });

  it("a connection that sends other messages but never registers is still closed", async () => {
    const idle = await fixture.connect(transport);
    const early = await idle.request("ping", {}, ["pong"]);
    expect(early.payload).toMatchObject({ code: 400 });
    const notice = await idle.next((m) => m.type === "error" && m.payload?.["close_code"] !== undefined, 3_000);
    expect(notice.payload).toMatchObject({ code: 400, close_code: 1008 });
    await idle.closed;
  });
});
