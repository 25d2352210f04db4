import { PeerError } from "./errors.ts";
import type { RequestType, ServerMessage, ServerMessageType } from "./protocol.ts";

/** How a request ends: its direct reply (undefined for a request that has none), or an error. */
export type Settle = (error: PeerError | undefined, reply: ServerMessage | undefined) => void;

/** A request sent on `/ws` and not answered yet. */
export interface PendingRequest {
  readonly type: RequestType;
  /** The reply types that answer it besides `error`; undefined when success is silent. */
  readonly expects: readonly ServerMessageType[] | undefined;
  /** The namespace its reply names (join, discover, join_room, match, match_cancel), to tell it from a notice about another. */
  readonly scope: string | undefined;
  readonly settle: Settle;
}

/**
 * Pairs `/ws` replies with the requests they answer. Raw envelopes carry no request id, but the
 * server handles one connection's requests strictly in order and answers each in its turn, so the
 * oldest pending request a reply fits is the one it answers, and every silent request sent before
 * that one (signal, relay, broadcast, leave, kick, metadata) was handled without an error. A silent
 * request at the end of the queue learns its fate from the next answer: the transport sends a
 * `ping` as a barrier when nothing else follows it.
 *
 * A request that timed out stays in the queue, settled, until its reply comes, so that the late
 * reply is not taken for a later request's.
 */
export class ReplyQueue {
  private pending: { request: PendingRequest; settled: boolean }[] = [];

  add(request: PendingRequest): void {
    this.pending.push({ request, settled: false });
  }

  /** Settles `request` now (a timeout) while keeping its place for its reply. */
  abandon(request: PendingRequest, error: PeerError): void {
    const entry = this.pending.find((candidate) => candidate.request === request);
    if (entry === undefined || entry.settled) return;
    entry.settled = true;
    request.settle(error, undefined);
  }

  /** True when the newest request waits for no reply: only a later answer will settle it. */
  get endsSilent(): boolean {
    const last = this.pending[this.pending.length - 1];
    return last !== undefined && last.request.expects === undefined;
  }

  get size(): number {
    return this.pending.length;
  }

  /**
   * Offers a received message. Returns true when it answered a pending request (and was handed to
   * it), false when it is a notice for the application (a signal, a `matched` of someone else's
   * request, an error with no request behind it).
   */
  offer(message: ServerMessage): boolean {
    const index = this.pending.findIndex(({ request }) => answers(message, request));
    if (index < 0) return false;
    const earlier = this.pending.slice(0, index);
    const entry = this.pending[index] as (typeof this.pending)[number];
    // Silent requests before the answered one were handled, without an error; others keep waiting.
    this.pending = [...earlier.filter(({ request }) => request.expects !== undefined), ...this.pending.slice(index + 1)];
    for (const before of earlier) {
      if (before.request.expects === undefined && !before.settled) before.request.settle(undefined, undefined);
    }
    if (!entry.settled) {
      if (message.type === "error") entry.request.settle(PeerError.fromPayload(message.payload), undefined);
      else entry.request.settle(undefined, message);
    }
    return true;
  }

  /** Fails every pending request (the connection is gone). */
  failAll(error: PeerError): void {
    const pending = this.pending;
    this.pending = [];
    for (const entry of pending) if (!entry.settled) entry.request.settle(error, undefined);
  }
}

function answers(message: ServerMessage, request: PendingRequest): boolean {
  if (message.type === "error") return message.payload.ref === request.type;
  if (request.expects === undefined || !request.expects.includes(message.type)) return false;
  if (request.scope === undefined) return true;
  switch (message.type) {
    case "peer_list":
      return message.namespace === request.scope;
    case "match":
    case "matched":
      return message.payload.namespace === request.scope;
    default:
      return true;
  }
}
