import { PeerError } from "./errors.ts";
import { REPLY_TYPES, type RequestBody, type RequestType, type ServerMessage } from "./protocol.ts";
import { ReplyQueue, type PendingRequest } from "./reply-queue.ts";
import type { ConnectionEnd, Transport, TransportHandlers, WebSocketConstructor, WebSocketLike } from "./transport.ts";

const OPEN = 1;
/** Requests whose reply names a scope: the payload field that holds it. */
const SCOPE_FIELD: { readonly [T in RequestType]?: string } = { join: "namespace", discover: "namespace", join_room: "room_id", match: "namespace", match_cancel: "namespace" };

/** The server's raw WebSocket endpoint, `/ws`: JSON envelopes `{type, to?, payload?}` each way. */
export class RawTransport implements Transport {
  private socket: WebSocketLike | undefined;
  private readonly replies = new ReplyQueue();
  private barrierScheduled = false;
  private announced: number | undefined;
  private ended = false;

  constructor(
    private readonly url: string,
    private readonly WebSocketClass: WebSocketConstructor,
    private readonly handlers: TransportHandlers,
  ) {}

  open(): Promise<void> {
    return new Promise((resolve, reject) => {
      const socket = new this.WebSocketClass(this.url);
      this.socket = socket;
      let opened = false;
      socket.onopen = () => {
        opened = true;
        resolve();
      };
      socket.onerror = () => {
        // A failed open ends in onclose too (the browser's WebSocket and ws alike): decided there.
      };
      socket.onmessage = (event) => this.receive(event.data);
      socket.onclose = (event) => {
        if (!opened) {
          reject(new Error(`cannot connect to ${this.url} (close ${event.code})`));
          return;
        }
        this.end({ code: event.code, reason: event.reason, announced: this.announced });
      };
    });
  }

  request(type: RequestType, body: RequestBody, timeoutMs: number): Promise<ServerMessage | undefined> {
    const socket = this.socket;
    if (socket === undefined || socket.readyState !== OPEN || this.ended) return Promise.reject(new PeerError("connection_lost", "not connected", type));
    return new Promise((resolve, reject) => {
      const field = SCOPE_FIELD[type];
      const scope = field === undefined ? undefined : (body.payload as Record<string, unknown> | undefined)?.[field];
      const timer = setTimeout(() => this.replies.abandon(pending, new PeerError("timeout", `no answer to ${type} within ${timeoutMs} ms`, type)), timeoutMs);
      const pending: PendingRequest = {
        type,
        expects: REPLY_TYPES[type],
        scope: typeof scope === "string" ? scope : undefined,
        settle: (error, reply) => {
          clearTimeout(timer);
          if (error === undefined) resolve(reply);
          else reject(error);
        },
      };
      this.replies.add(pending);
      socket.send(JSON.stringify({ type, ...body }));
      if (pending.expects === undefined) this.scheduleBarrier();
    });
  }

  close(error: PeerError): void {
    this.ended = true;
    this.replies.failAll(error);
    if (this.socket !== undefined) {
      this.socket.onclose = null;
      this.socket.onmessage = null;
      this.socket.close(1000);
    }
  }

  /**
   * A silent request is settled by the next answer the server sends; when none is coming, a
   * `ping` is one. Scheduled once per turn, so a burst of signals costs one ping.
   */
  private scheduleBarrier(): void {
    if (this.barrierScheduled) return;
    this.barrierScheduled = true;
    setTimeout(() => {
      this.barrierScheduled = false;
      const socket = this.socket;
      if (!this.replies.endsSilent || socket === undefined || socket.readyState !== OPEN || this.ended) return;
      this.replies.add({ type: "ping", expects: REPLY_TYPES.ping, scope: undefined, settle: () => undefined });
      socket.send('{"type":"ping"}');
    }, 0);
  }

  private receive(data: unknown): void {
    if (typeof data !== "string") return; // the protocol is JSON text; nothing else is sent
    let message: ServerMessage;
    try {
      message = JSON.parse(data) as ServerMessage;
    } catch {
      return;
    }
    if (message.type === "error" && message.payload.close_code !== undefined) this.announced = message.payload.close_code;
    if (!this.replies.offer(message)) this.handlers.message(message);
  }

  private end(end: ConnectionEnd): void {
    if (this.ended) return;
    this.ended = true;
    this.replies.failAll(new PeerError("connection_lost", `connection lost (${end.code ?? "no code"})`));
    this.handlers.closed(end);
  }
}
