import { describe, expect, it } from "vitest";
import { TRANSPORTS, type Envelope, type TestPeer } from "../helpers/peers.ts";
import { useServer } from "../helpers/use-server.ts";
import { waitFor } from "../helpers/wait.ts";

const PER_SEC = 5;
const BURST = 10;
const PINGS = 40;
/** How long the bucket takes to gain one token. */
const TOKEN_MS = 1_000 / PER_SEC;
// A closed peer departs at once here (resume_grace 0): resume has its own tests (resume.test.ts).
const fixture = useServer({ config: { rate_limit_per_sec: PER_SEC, rate_limit_burst: BURST, resume_grace: 0 } });

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

/** Sends one ping and returns its answer (pong, or an error with ref "ping"), leaving other errors buffered. */
function pingOnce(peer: TestPeer): Promise<Envelope> {
  if (peer.transport === "sio") return peer.request("ping");
  const answer = peer.next((m) => m.type === "pong" || (m.type === "error" && m.payload?.["ref"] === "ping"));
  peer.send("ping");
  return answer;
}

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
    // The bucket refills: pings are answered again on the same connection. A pair of pings is tried
    // once every two tokens' worth of refill, so a pair that gets one pong and one 429 (taking the
    // only token) cannot keep the next pair from finding two. How fast it refills is the token
    // bucket's unit test (test/unit/token-bucket.test.ts).
    const after = await waitFor(
      () => pingBurst(a, 2),
      (replies) => closed || replies.every((m) => m.type === "pong"),
      { timeoutMs: 5_000, intervalMs: 2 * TOKEN_MS, what: "a pair of pings answered with two pongs" },
    );
    expect(closed).toBe(false);
    expect(after.map((m) => m.type)).toEqual(["pong", "pong"]);
  });

  it("relays over the limit are dropped with 429, never delivered", async () => {
    const ns = `rate-relay-${transport}`;
    const sender = await peer(transport, ns);
    const receiver = await peer(transport === "ws" ? "sio" : "ws", ns);
    // The sender's bucket starts the burst two tokens short (its register and join): enough for
    // some relays, far from all of them.
    const errors: Promise<Envelope>[] = [];
    for (let i = 0; i < PINGS; i++) {
      if (transport === "sio") errors.push(sender.request("relay", { to: receiver.fingerprint, payload: { n: i } }));
      else sender.send("relay", { to: receiver.fingerprint, payload: { n: i } });
    }
    // Every relay has been handled once the sender has an answer to each (Socket.IO acks), or a
    // ping behind them answered with pong (a session's requests are handled in order; a ping
    // refused with 429 costs no token, so one is tried per token's worth of refill). Its peer_left
    // then reaches the receiver after every relay it let through: one sender's messages reach a
    // receiver in order.
    const acks = transport === "sio" ? await Promise.all(errors) : [];
    if (transport === "ws") {
      await waitFor(() => pingOnce(sender), (answer) => answer.type === "pong", { timeoutMs: 5_000, intervalMs: TOKEN_MS, what: "a ping behind the relays answered with pong" });
    }
    sender.close();
    await receiver.next((m) => m.type === "peer_left" && m.from === sender.fingerprint);
    const delivered = receiver.received.filter((m) => m.type === "relay").map((m) => Number((m.payload as { n: number }).n));
    expect(delivered.length).toBeGreaterThan(0);
    expect(delivered.length).toBeLessThan(PINGS);
    // Those that got through arrive in order, without duplicates.
    expect(delivered).toEqual([...delivered].sort((x, y) => x - y));
    expect(new Set(delivered).size).toBe(delivered.length);
    if (transport === "sio") {
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
