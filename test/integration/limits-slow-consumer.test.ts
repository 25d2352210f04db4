import type { Socket } from "socket.io-client";
import type WebSocket from "ws";
import { describe, expect, it } from "vitest";
import { TRANSPORTS, type Envelope, type TestPeer, type Transport } from "../helpers/peers.ts";
import { useServer } from "../helpers/use-server.ts";

const SEND_BUFFER = 4;
/** Large enough that a few of them fill the loopback socket buffers of a peer that stopped reading. */
const CHUNK = 256 * 1024;
/** Upper bound on what the sender pushes: ~100 MB would be far beyond any kernel buffer. */
const MAX_MESSAGES = 400;
const MAX_FLOOD_MS = 10_000;

const fixture = useServer({
  config: {
    send_buffer_size: SEND_BUFFER,
    max_message_size: 2 * CHUNK,
    rate_limit_per_sec: 100_000,
    rate_limit_burst: 100_000,
  },
});

const peer = (transport: Transport, namespace: string): Promise<TestPeer> => fixture.peer(transport, { namespace });

/** The TCP socket under a peer's WebSocket: for /ws the ws client's own, for Socket.IO its engine's. */
function tcpOf(peer: TestPeer): { pause(): void; resume(): void } {
  if (peer.transport === "ws") {
    return (peer as unknown as { socket: { _socket: { pause(): void; resume(): void } } }).socket._socket;
  }
  const socket = (peer as unknown as { socket: Socket }).socket;
  const engine = socket.io.engine as unknown as { transport: { name: string; ws: WebSocket } };
  if (engine.transport.name !== "websocket") throw new Error(`Socket.IO peer is on ${engine.transport.name}, not websocket`);
  return (engine.transport.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
}

/**
 * Pushes large messages at `victim` until `stop` resolves, in bounded count and time. Yields to the
 * event loop between sends so the sender's own socket drains and the stop signal is seen.
 */
async function flood(send: (i: number) => void, stop: Promise<unknown>): Promise<number> {
  let stopped = false;
  void stop.then(() => (stopped = true));
  const started = Date.now();
  let sent = 0;
  while (!stopped && sent < MAX_MESSAGES && Date.now() - started < MAX_FLOOD_MS) {
    send(sent++);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  if (!stopped) throw new Error(`the stalled peer was not disconnected after ${sent} messages of ${CHUNK} bytes`);
  return sent;
}

/** Pings and waits for the pong itself, past any errors the flood left in the buffer. */
async function pong(peer: TestPeer): Promise<string> {
  if (peer.transport === "sio") return (await peer.request("ping")).type;
  peer.send("ping");
  return (await peer.next("pong")).type;
}

describe.each(TRANSPORTS)("send_buffer_size = 4: a %s peer that stops reading", (victimTransport) => {
  describe.each(["relay", "broadcast"] as const)("flooded by %s", (mode) => {
    it.each(TRANSPORTS)("is disconnected while the sender (%s) and a third peer keep working", async (senderTransport) => {
      const ns = `slow-${victimTransport}-${mode}-${senderTransport}`;
      const victim = await peer(victimTransport, ns);
      const sender = await peer(senderTransport, ns);
      const third = await peer(senderTransport === "ws" ? "sio" : "ws", ns);
      const data = "y".repeat(CHUNK);

      const socket = tcpOf(victim);
      socket.pause();
      const victimLeft = third.next((m: Envelope) => m.type === "peer_left" && m.from === victim.fingerprint, MAX_FLOOD_MS + 2_000);
      // The broadcast excludes the third peer so that only the victim has to keep up with the flood.
      await flood(
        (i) =>
          mode === "relay"
            ? sender.send("relay", { to: victim.fingerprint, payload: { i, data } })
            : sender.send("broadcast", { payload: { namespace: ns, data: { i, data }, exclude: [third.fingerprint] } }),
        victimLeft,
      );
      expect(await victimLeft).toMatchObject({ from: victim.fingerprint, namespace: ns });
      expect(await sender.next((m) => m.type === "peer_left" && m.from === victim.fingerprint)).toMatchObject({ namespace: ns });

      socket.resume();
      const closed = await victim.closed;
      if (victimTransport === "ws") expect(closed.code).toBe(4002);
      else expect(["transport close", "io server disconnect"]).toContain(closed.code);

      expect(await pong(sender)).toBe("pong");
      expect(await pong(third)).toBe("pong");
      // Nothing the sender sent was refused while the victim was connected; relays that raced
      // its removal find no such peer.
      const refusals = sender.received.filter((m) => m.type === "error").map((m) => m.payload?.code);
      if (mode === "broadcast") expect(refusals).toEqual([]);
      else expect(refusals.every((code) => code === 404)).toBe(true);
      // The victim is gone for good: a relay to it now finds no such peer.
      sender.received.length = 0;
      const after = await sender.request("relay", { to: victim.fingerprint, payload: {} }, []);
      expect(after.payload).toMatchObject({ code: 404 });
    });
  });
});
