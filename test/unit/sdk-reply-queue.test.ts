import { describe, expect, it } from "vitest";
import { PeerError } from "../../client/src/errors.ts";
import type { RequestType, ServerMessage, ServerMessageType } from "../../client/src/protocol.ts";
import { REPLY_TYPES } from "../../client/src/protocol.ts";
import { ReplyQueue, type PendingRequest } from "../../client/src/reply-queue.ts";

/** A pending request that records how it ended. */
function pending(type: RequestType, scope?: string): PendingRequest & { outcome: { error?: PeerError; reply?: ServerMessage; settled: boolean } } {
  const outcome: { error?: PeerError; reply?: ServerMessage; settled: boolean } = { settled: false };
  const expects: readonly ServerMessageType[] | undefined = REPLY_TYPES[type];
  return {
    type,
    expects,
    scope,
    outcome,
    settle: (error, reply) => {
      expect(outcome.settled, `${type} settled twice`).toBe(false);
      outcome.settled = true;
      if (error !== undefined) outcome.error = error;
      if (reply !== undefined) outcome.reply = reply;
    },
  };
}

const peerList = (namespace: string): ServerMessage => ({ type: "peer_list", namespace, payload: { namespace, peers: [], total: 0 } });
const error = (code: number, ref?: string): ServerMessage => ({ type: "error", payload: ref === undefined ? { code, message: "no" } : { code, message: "no", ref } });
const pong: ServerMessage = { type: "pong", ts: 1 };

describe("ReplyQueue: pairing /ws replies with requests answered in order", () => {
  it("a reply answers the oldest request it fits, and the silent requests before it succeeded", () => {
    const queue = new ReplyQueue();
    const signal = pending("signal");
    const join = pending("join", "lobby");
    queue.add(signal);
    queue.add(join);
    expect(queue.offer(peerList("lobby"))).toBe(true);
    expect(signal.outcome).toEqual({ settled: true });
    expect(join.outcome.reply).toMatchObject({ type: "peer_list", namespace: "lobby" });
    expect(queue.size).toBe(0);
  });

  it("an error carries its request's ref: it fails that request, not an earlier silent one", () => {
    const queue = new ReplyQueue();
    const relay = pending("relay");
    const signal = pending("signal");
    queue.add(relay);
    queue.add(signal);
    expect(queue.offer(error(404, "signal"))).toBe(true);
    expect(relay.outcome).toEqual({ settled: true });
    expect(signal.outcome.error).toMatchObject({ code: 404, ref: "signal" });
  });

  it("a silent request at the end waits for the next answer: endsSilent asks for a barrier", () => {
    const queue = new ReplyQueue();
    const broadcast = pending("broadcast");
    queue.add(broadcast);
    expect(queue.endsSilent).toBe(true);
    const barrier = pending("ping");
    queue.add(barrier);
    expect(queue.endsSilent).toBe(false);
    expect(queue.offer(pong)).toBe(true);
    expect(broadcast.outcome).toEqual({ settled: true });
    expect(barrier.outcome.reply).toEqual(pong);
  });

  it("notices are not replies: a matched for another namespace, a peer_list of another scope, an error without ref", () => {
    const queue = new ReplyQueue();
    const match = pending("match", "arena");
    const discover = pending("discover", "lobby");
    queue.add(match);
    queue.add(discover);
    const otherMatch: ServerMessage = { type: "matched", namespace: "other", payload: { namespace: "other", session_id: "s", peers: [] }, ts: 1 };
    expect(queue.offer(otherMatch)).toBe(false);
    expect(queue.offer(peerList("elsewhere"))).toBe(false);
    expect(queue.offer(error(400))).toBe(false);
    expect(queue.offer({ type: "signal", from: "x", to: "y", payload: {}, ts: 1 })).toBe(false);
    const ownMatch: ServerMessage = { type: "matched", namespace: "arena", payload: { namespace: "arena", session_id: "s", peers: [] }, ts: 1 };
    expect(queue.offer(ownMatch)).toBe(true);
    expect(match.outcome.reply).toEqual(ownMatch);
    expect(queue.offer(peerList("lobby"))).toBe(true);
    expect(discover.outcome.reply).toMatchObject({ namespace: "lobby" });
  });

  it("a request given up (timeout) keeps its place, so that its late reply is not taken for the next one's", () => {
    const queue = new ReplyQueue();
    const late = pending("ping");
    const next = pending("ping");
    queue.add(late);
    queue.add(next);
    queue.abandon(late, new PeerError("timeout", "too slow"));
    expect(late.outcome.error).toMatchObject({ code: "timeout" });
    expect(queue.offer({ type: "pong", ts: 1 })).toBe(true);
    expect(next.outcome.settled).toBe(false);
    expect(queue.offer({ type: "pong", ts: 2 })).toBe(true);
    expect(next.outcome.reply).toEqual({ type: "pong", ts: 2 });
  });

  it("failAll fails what is still waiting, once", () => {
    const queue = new ReplyQueue();
    const given = pending("ping");
    const waiting = pending("join", "lobby");
    queue.add(given);
    queue.add(waiting);
    queue.abandon(given, new PeerError("timeout", "too slow"));
    queue.failAll(new PeerError("connection_lost", "gone"));
    expect(waiting.outcome.error).toMatchObject({ code: "connection_lost" });
    expect(given.outcome.error).toMatchObject({ code: "timeout" });
    expect(queue.size).toBe(0);
  });
});
