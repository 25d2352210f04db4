import { describe, expect, it } from "vitest";
import { TRANSPORTS, type Envelope, type TestPeer } from "../helpers/peers.ts";
import { useServer } from "../helpers/use-server.ts";

const PER_SEC = 5;
const BURST = 10;
const PINGS = 40;
const fixture = useServer({ config: { rate_limit_per_sec: PER_SEC, rate_limit_burst: BURST } });

const peer = (transport: "ws" | "sio", namespace?: string): Promise<TestPeer> => fixture.peer(transport, { namespace });

/**
 * Sends `count` pings back to back and collects one reply per ping. Over Socket.IO each ping has
 * its own acknowledgement; over /ws the replies arrive in order on the connection.
 */
async function pingBurst(peer: TestPeer, count: number): Promise<Envelope[]> {
  if (peer.transport === "sio") {
    return Promise.all(Array.from({ length: count }, () => peer.request("ping")));
  }
  const replies: Promise<Envelope>[] = [];
  for (let i = 0; i < count; i++) replies.push(peer.next((m) => m.type === "pong" || m.type === "error"));
  for (let i = 0; i < count; i++) peer.send("ping");
  return Promise.all(replies);
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe.each(TRANSPORTS)("rate limit 5/s, burst 10, over %s", (transport) => {
  it("a burst of 40 pings gets some pongs and some 429s, and the connection stays open", async () => {
    const a = await peer(transport);
    const replies = await pingBurst(a, PINGS);
    const pongs = replies.filter((m) => m.type === "pong");
    const limited = replies.filter((m) => m.type === "error");
    expect(pongs.length + limited.length).toBe(PINGS);
    expect(pongs.length).toBeGreaterThan(0);
    expect(pongs.length).toBeLessThan(PINGS);
    for (const error of limited) expect(error.payload).toMatchObject({ code: 429, ref: "ping" });

    let closed = false;
    void a.closed.then(() => (closed = true));
    // The bucket refills: after a pause pings are answered again on the same connection.
    await sleep(1_500);
    expect(closed).toBe(false);
    const after = await pingBurst(a, 2);
    expect(after.map((m) => m.type)).toEqual(["pong", "pong"]);
  });

  it("relays over the limit are dropped with 429, never delivered", async () => {
    const ns = `rate-relay-${transport}`;
    const sender = await peer(transport, ns);
    const receiver = await peer(transport === "ws" ? "sio" : "ws", ns);
    await sleep(1_100); // the join used tokens; start from a full bucket
    const errors: Promise<Envelope>[] = [];
    for (let i = 0; i < PINGS; i++) {
      if (transport === "sio") errors.push(sender.request("relay", { to: receiver.fingerprint, payload: { n: i } }));
      else sender.send("relay", { to: receiver.fingerprint, payload: { n: i } });
    }
    const delivered: number[] = [];
    for (;;) {
      try {
        const relayed = await receiver.next("relay", 500);
        delivered.push(Number((relayed.payload as { n: number }).n));
      } catch {
        break;
      }
    }
    expect(delivered.length).toBeGreaterThan(0);
    expect(delivered.length).toBeLessThan(PINGS);
    // Those that got through arrive in order, without duplicates.
    expect(delivered).toEqual([...delivered].sort((x, y) => x - y));
    expect(new Set(delivered).size).toBe(delivered.length);
    if (transport === "sio") {
      const acks = await Promise.all(errors);
      expect(acks.filter((m) => m.type === "ok")).toHaveLength(delivered.length);
      expect(acks.filter((m) => m.type === "error" && m.payload?.code === 429)).toHaveLength(PINGS - delivered.length);
    } else {
      const limited = sender.received.filter((m) => m.type === "error" && m.payload?.code === 429);
      expect(limited).toHaveLength(PINGS - delivered.length);
    }
  });

  it.each(TRANSPORTS)("one limited peer does not limit another peer over %s", async (otherTransport) => {
    const noisy = await peer(transport);
    const quiet = await peer(otherTransport);
    const burst = pingBurst(noisy, PINGS);
    const quietReplies = await pingBurst(quiet, 3);
    expect(quietReplies.map((m) => m.type)).toEqual(["pong", "pong", "pong"]);
    const noisyReplies = await burst;
    expect(noisyReplies.some((m) => m.type === "error" && m.payload?.code === 429)).toBe(true);
    // And the quiet peer is still not limited once the noisy one has been throttled.
    expect((await pingBurst(quiet, 3)).map((m) => m.type)).toEqual(["pong", "pong", "pong"]);
  });
});
