import type { Server, Socket } from "socket.io";
import type { Connection } from "../core/connection.ts";
import type { Hub } from "../core/hub.ts";
import type { Ack, Session } from "../core/session.ts";
import type { Body } from "../protocol/envelope.ts";
import { CloseCode, ErrorCode } from "../protocol/errors.ts";

/** Engine.IO keeps its outgoing queue private; we read its length to bound it. */
interface EngineWithBuffer {
  writeBuffer: readonly unknown[];
  transport: { name: string; socket?: { bufferedAmount?: number } };
  close(discard?: boolean): void;
  on(event: "packetCreate", listener: () => void): void;
}

/**
 * Over long-polling, packets wait in the engine until the client's next poll even when it reads
 * promptly, so the bound is this many times looser there.
 */
const POLLING_SLACK = 8;

/** socket.io's Client.writeToEngine (internal; socket.io is pinned to an exact version). */
interface PreEncodedWriter {
  writeToEngine(packets: string[], options: { preEncoded: boolean }): void;
}

/**
 * A Socket.IO socket as a core Connection. Each protocol message type is an event whose single
 * argument is the envelope without `type`.
 */
class SocketIoConnection implements Connection {
  readonly transport = "socket.io";
  private closed = false;

  constructor(
    private readonly socket: Socket,
    sendBufferSize: number,
  ) {
    const engine = socket.conn as unknown as EngineWithBuffer;
    // Every packet for this client, from a direct emit or from an adapter broadcast, passes here
    // before it is queued: one place to enforce send_buffer_size for all delivery paths.
    // Over WebSocket the engine holds packets while a send is in flight (until the next tick) even
    // for a client that reads promptly; they count only while the socket below is backed up too,
    // i.e. the kernel stopped taking data because the client stopped reading.
    engine.on("packetCreate", () => {
      if (this.closed || engine.writeBuffer.length < sendBufferSize) return;
      const transport = engine.transport;
      const stalled =
        transport.name === "polling"
          ? engine.writeBuffer.length >= sendBufferSize * POLLING_SLACK
          : (transport.socket?.bufferedAmount ?? 0) > 0;
      if (stalled) queueMicrotask(() => this.close(CloseCode.SlowConsumer, "slow consumer"));
    });
  }

  get id(): string {
    return this.socket.id;
  }

  get rooms(): ReadonlySet<string> {
    return this.socket.rooms;
  }

  send(type: string, body: Body): void {
    if (!this.closed) this.socket.emit(type, body);
  }

  sendEncoded(type: string, bodyJson: string): void {
    // The same pre-encoded write the adapter uses for broadcasts: an EVENT packet of the default
    // namespace, so the body is not parsed and serialized again.
    if (!this.closed) (this.socket.client as unknown as PreEncodedWriter).writeToEngine([`2["${type}",${bodyJson}]`], { preEncoded: true });
  }

  join(room: string): void {
    void this.socket.join(room);
  }

  leave(room: string): void {
    void this.socket.leave(room);
  }

  close(code: CloseCode, _reason?: string): void {
    if (this.closed) return;
    this.closed = true;
    // disconnect() leaves every room synchronously; a slow consumer's queue is discarded, not drained.
    this.socket.disconnect(true);
    if (code === CloseCode.SlowConsumer) (this.socket.conn as unknown as EngineWithBuffer).close(true);
  }
}

/** Wires Socket.IO connections into the hub. */
export function bindSocketIo(io: Server, hub: Hub, sendBufferSize: number): void {
  io.on("connection", (socket) => {
    const connection = new SocketIoConnection(socket, sendBufferSize);
    const session = hub.open(connection);
    if (session === undefined) return;
    // The protocol is JSON: an event carrying binary attachments is refused (400), like a binary
    // frame on /ws, since raw peers could never receive it. Its attachments arrive as binary
    // engine packets right before the event is decoded, so the last message packet tells.
    let binary = false;
    socket.conn.on("packet", (packet: { type: string; data?: unknown }) => {
      if (packet.type === "message") binary = typeof packet.data !== "string";
    });
    socket.onAny((event: string, ...args: unknown[]) => onEvent(hub, session, event, args, binary));
    socket.on("disconnect", () => void hub.close(session));
  });
}

function onEvent(hub: Hub, session: Session, event: string, args: unknown[], binary: boolean): void {
  const last = args[args.length - 1];
  const ack = typeof last === "function" ? (last as Ack) : undefined;
  if (ack !== undefined) args.pop();
  if (binary) {
    hub.reject(session, ErrorCode.BadRequest, "binary data is not supported; send JSON", ack);
    return;
  }
  if (args.length > 1) {
    hub.reject(session, ErrorCode.BadRequest, "send one envelope object as the only argument", ack);
    return;
  }
  // No argument at all is an empty envelope (`emit("ping")`); an explicit null is refused like on /ws.
  const envelope = args.length === 0 ? {} : args[0];
  if (typeof envelope !== "object" || envelope === null || Array.isArray(envelope) || Buffer.isBuffer(envelope)) {
    hub.reject(session, ErrorCode.BadRequest, "the argument must be an envelope object", ack);
    return;
  }
  const fields = envelope as Record<string, unknown>;
  hub.receive(session, { type: event, to: fields["to"], namespace: fields["namespace"], payload: fields["payload"] }, ack);
}
