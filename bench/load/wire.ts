import { connect as connectTcp, type Socket } from "node:net";
import type { Endpoint } from "../core/targets.ts";
import type { BenchClient, Envelope, Fields } from "./clients.ts";
import type { Transport } from "./protocol.ts";
import { ReplyWaiters } from "./reply-waiters.ts";

/**
 * Wire-level load clients: the same bytes a `ws` or socket.io-client client puts on the wire
 * (HTTP upgrade, WebSocket frames, Engine.IO/Socket.IO packets), produced and parsed with as
 * little work as possible. The load process has one core for hundreds of clients; with the
 * library clients it saturated before the relays did (socket.io-client parses every packet, and a
 * `ws` client handshake costs more than the server's side of it), which squeezes every ratio
 * towards 1. Frames are masked with a zero key, which RFC 6455 servers accept and still unmask.
 *
 * Text protocol per transport, as seen by `onText`/`sendText`:
 *   ws:  the JSON envelope, `{"type":"signal",...}`
 *   sio: the Socket.IO packet inside the Engine.IO message, `42["signal",{...}]`
 */

const KEY = "dGhlIHNhbXBsZSBub25jZQ==";
const EMPTY = Buffer.alloc(0);
const ignore = (): void => undefined;

/** A client text frame: FIN + text opcode, masked with a zero key. */
function textFrame(text: string): Buffer {
  const length = Buffer.byteLength(text);
  const header = length < 126 ? 6 : length < 65_536 ? 8 : 14;
  const frame = Buffer.allocUnsafe(header + length);
  frame[0] = 0x81;
  if (length < 126) frame[1] = 0x80 | length;
  else if (length < 65_536) {
    frame[1] = 0x80 | 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 0x80 | 127;
    frame.writeBigUInt64BE(BigInt(length), 2);
  }
  frame.writeUInt32BE(0, header - 4);
  frame.write(text, header, "utf8");
  return frame;
}

/** A masked control frame (close, pong) with a small payload. */
function controlFrame(opcode: number, payload: Buffer): Buffer {
  const frame = Buffer.alloc(6 + payload.length);
  frame[0] = 0x80 | opcode;
  frame[1] = 0x80 | payload.length;
  payload.copy(frame, 6);
  return frame;
}

const CLOSE_NORMAL = controlFrame(0x8, Buffer.from([0x03, 0xe8]));

class WireClient implements BenchClient {
  readonly textFrames = true;
  fingerprint = "";
  onMessage: (type: string, body: Envelope) => void = ignore;
  onText: ((text: string) => boolean) | undefined;
  readonly closed: Promise<string>;
  isClosed = false;
  closeReason: string | undefined;
  /** Text frames before the connection is ready (the Socket.IO handshake) go here. */
  private handshake: ((text: string) => void) | undefined;
  private pending: Buffer = EMPTY;
  private readonly waiters = new ReplyWaiters();
  private readonly acks = new Map<number, (reply: Envelope) => void>();
  private nextAck = 0;
  private closeCode = 0;
  private closeSent = false;

  constructor(
    readonly transport: Transport,
    private readonly socket: Socket,
  ) {
    socket.on("error", ignore);
    this.closed = new Promise((resolve) =>
      socket.once("close", () => {
        this.isClosed = true;
        this.closeReason ??= this.closeCode !== 0 ? `close frame ${this.closeCode}` : "connection closed";
        resolve(this.closeReason);
      }),
    );
  }

  /** Feeds bytes read from the socket after the HTTP upgrade. */
  feed(chunk: Buffer): void {
    const buffer = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    let offset = 0;
    while (buffer.length - offset >= 2) {
      const first = buffer[offset] as number;
      let length = (buffer[offset + 1] as number) & 0x7f;
      let header = 2;
      if (length === 126) {
        if (buffer.length - offset < 4) break;
        length = buffer.readUInt16BE(offset + 2);
        header = 4;
      } else if (length === 127) {
        if (buffer.length - offset < 10) break;
        length = Number(buffer.readBigUInt64BE(offset + 2));
        header = 10;
      }
      if (buffer.length - offset < header + length) break;
      const start = offset + header;
      offset = start + length;
      const opcode = first & 0x0f;
      if (opcode === 0x1) this.receive(buffer.toString("utf8", start, offset));
      else if (opcode === 0x9) this.socket.write(controlFrame(0xa, buffer.subarray(start, offset)));
      else if (opcode === 0x8) {
        this.closeCode = length >= 2 ? buffer.readUInt16BE(start) : 1005;
        this.closeReason = `close frame ${this.closeCode}${length > 2 ? ` ${buffer.toString("utf8", start + 2, offset)}` : ""}`;
        // Answer a server-initiated close, then end as a `ws` client does once the handshake is over.
        if (!this.closeSent) this.socket.write(CLOSE_NORMAL);
        this.closeSent = true;
        this.socket.end();
        return;
      }
    }
    // Keep only the incomplete tail (copied, so the big chunk it came from can be freed).
    this.pending = offset === buffer.length ? EMPTY : Buffer.from(buffer.subarray(offset));
  }

  private receive(text: string): void {
    if (this.handshake !== undefined) {
      this.handshake(text);
      return;
    }
    if (this.onText !== undefined && this.onText(text)) return;
    if (this.transport === "ws") {
      const message = JSON.parse(text) as Envelope;
      this.dispatch(message.type, message);
      return;
    }
    // Engine.IO: 2 = ping, 4 = message; Socket.IO inside a message: 2 = event, 3 = ack.
    if (text === "2") {
      this.socket.write(textFrame("3"));
      return;
    }
    if (text.startsWith("42")) {
      const [type, body] = JSON.parse(text.slice(2)) as [string, Envelope | undefined];
      this.dispatch(type, body ?? ({} as Envelope));
    } else if (text.startsWith("43")) {
      const bracket = text.indexOf("[");
      const id = Number(text.slice(2, bracket));
      const [reply] = JSON.parse(text.slice(bracket)) as [Envelope];
      this.acks.get(id)?.(reply);
      this.acks.delete(id);
    } else if (text.startsWith("41")) {
      this.closeReason = "socket.io disconnect packet";
    }
  }

  private dispatch(type: string, body: Envelope): void {
    if (this.waiters.settle(type, () => (this.transport === "ws" ? body : { ...body, type }))) return;
    this.onMessage(type, body);
  }

  /** Socket.IO only: waits for Engine.IO open, connects to the default namespace. */
  async connectNamespace(timeoutMs: number, onStep?: StepListener): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no Socket.IO handshake")), timeoutMs);
      this.handshake = (text) => {
        if (text.startsWith("0")) {
          onStep?.("socket.io connect (40 sent, waiting for 40)", /"sid":"([^"]+)"/.exec(text)?.[1]);
          this.socket.write(textFrame("40"));
        } else if (text.startsWith("40")) {
          clearTimeout(timer);
          this.handshake = undefined;
          resolve();
        } else if (text.startsWith("44")) {
          clearTimeout(timer);
          reject(new Error(`Socket.IO connect refused: ${text}`));
        }
      };
      void this.closed.then((reason) => {
        clearTimeout(timer);
        reject(new Error(`closed during the Socket.IO handshake: ${reason}`));
      });
    });
  }

  request(type: string, fields: Fields, replyTypes: readonly string[], timeoutMs = 30_000): Promise<Envelope> {
    if (this.transport === "ws") {
      const reply = this.waiters.wait(type, replyTypes, timeoutMs);
      this.send(type, fields);
      return reply;
    }
    // A Socket.IO acknowledgement carries the direct reply.
    return new Promise((resolve, reject) => {
      const id = this.nextAck++;
      const timer = setTimeout(() => {
        this.acks.delete(id);
        reject(new Error(`no ack for ${type} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.acks.set(id, (reply) => {
        clearTimeout(timer);
        resolve(reply);
      });
      this.sendText(`42${id}${JSON.stringify([type, fields])}`);
    });
  }

  send(type: string, fields: Fields): void {
    this.sendText(this.transport === "ws" ? JSON.stringify({ type, ...fields }) : `42${JSON.stringify([type, fields])}`);
  }

  sendText(text: string): void {
    if (!this.isClosed) this.socket.write(textFrame(text));
  }

  /** The closing handshake as library clients do it: send close, let the server answer and end the TCP connection. */
  close(): void {
    if (this.isClosed || this.closeSent) return;
    this.closeSent = true;
    if (this.transport === "sio") this.socket.write(textFrame("41"));
    this.socket.write(CLOSE_NORMAL);
    setTimeout(() => this.socket.destroy(), 10_000).unref();
  }

  drop(): void {
    this.socket.destroy();
  }
}

/** Told each step of a connection set-up as it starts (for the stress job: where a hung connection stopped), with a detail such as the Engine.IO sid. */
export type StepListener = (step: string, detail?: string) => void;

/** Another WebSocket endpoint than `/ws` for the "ws" transport (a dialect's), and who reads its first frames. */
export interface WsRoute {
  /** Path and query, e.g. `/p2p/ws` or `/pigeon?peerId=...`. */
  readonly path: string;
  /** The client's `onText` from the start, so that a greeting sent with the 101 answer is seen. */
  readonly onText?: (text: string) => boolean;
}

/**
 * Opens a wire-level client: TCP connect, HTTP upgrade, and for Socket.IO the namespace handshake.
 * `route` replaces `/ws` for the "ws" transport. `localPort`, with `localAddress`: the local end's
 * port (0 or absent: the kernel picks one).
 */
export function connectWire(
  transport: Transport,
  endpoint: Endpoint,
  localAddress?: string,
  timeoutMs = 20_000,
  onStep?: StepListener,
  route?: WsRoute,
  localPort = 0,
): Promise<BenchClient> {
  const path = transport === "ws" ? (route?.path ?? "/ws") : "/socket.io/?EIO=4&transport=websocket";
  const request =
    `GET ${path} HTTP/1.1\r\nHost: ${endpoint.host}:${endpoint.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n`;
  return new Promise<BenchClient>((resolve, reject) => {
    const socket = connectTcp({ host: endpoint.host, port: endpoint.port, noDelay: true, ...(localAddress === undefined ? {} : { localAddress, localPort }) });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`upgrade not answered within ${timeoutMs} ms`));
    }, timeoutMs);
    let head = "";
    const onHead = (chunk: Buffer): void => {
      head += chunk.toString("latin1");
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) return;
      socket.off("data", onHead);
      clearTimeout(timer);
      if (!head.startsWith("HTTP/1.1 101")) {
        socket.destroy();
        reject(new Error(`upgrade refused: ${head.split("\r\n", 1)[0] ?? ""}`));
        return;
      }
      const client = new WireClient(transport, socket);
      client.onText = route?.onText;
      socket.on("data", (data: Buffer) => client.feed(data));
      const rest = Buffer.from(head.slice(end + 4), "latin1");
      if (transport === "ws") {
        if (rest.length > 0) client.feed(rest);
        resolve(client);
        return;
      }
      onStep?.("engine.io open (101 received, waiting for the open packet)");
      const ready = client.connectNamespace(timeoutMs, onStep);
      if (rest.length > 0) client.feed(rest);
      ready.then(
        () => resolve(client),
        (error: unknown) => {
          socket.destroy();
          reject(error as Error);
        },
      );
    };
    socket.on("data", onHead);
    socket.once("connect", () => {
      onStep?.("http upgrade (request sent, waiting for 101)", `local port ${socket.localPort ?? "?"}`);
      socket.write(request);
    });
    socket.once("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

/** How a wire client frames an outgoing event: `head + fields-without-braces + tail`. */
export function eventHead(transport: Transport, type: string): string {
  return transport === "ws" ? `{"type":"${type}",` : `42["${type}",{`;
}

export function eventTail(transport: Transport): string {
  return transport === "ws" ? "}" : "}]";
}

/** The start of every incoming text of `type`, for cheap matching in hot loops. */
export function incomingPrefix(transport: Transport, type: string): string {
  return transport === "ws" ? `{"type":"${type}"` : `42["${type}"`;
}
