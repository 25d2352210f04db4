import { createHash, randomUUID } from "node:crypto";
import { Agent as HttpAgent } from "node:http";
import { io as ioClient, type Socket } from "socket.io-client";
import WebSocket from "ws";

/** A received message in envelope form, whichever transport carried it. */
export interface Envelope {
  type: string;
  from?: string;
  to?: string;
  namespace?: string;
  payload?: Record<string, unknown> & { code?: number };
  ts?: number;
  [key: string]: unknown;
}

export interface Fields {
  to?: string;
  namespace?: string;
  payload?: unknown;
  [key: string]: unknown;
}

export type Transport = "ws" | "sio";
export const TRANSPORTS: readonly Transport[] = ["ws", "sio"];
/** Every ordered pair of transports (first side, second side), so each path (ws->ws, ws->sio, sio->ws, sio->sio) is exercised. */
export const TRANSPORT_PAIRS: readonly (readonly [Transport, Transport])[] = [
  ["ws", "ws"],
  ["ws", "sio"],
  ["sio", "ws"],
  ["sio", "sio"],
];

type Matcher = string | ((message: Envelope) => boolean);

const matches = (matcher: Matcher, message: Envelope): boolean =>
  typeof matcher === "string" ? message.type === matcher : matcher(message);

/**
 * A test client over either transport with one API: everything received is buffered, and
 * `next()` takes the first buffered (or future) message that matches.
 */
export abstract class TestPeer {
  abstract readonly transport: Transport;
  readonly received: Envelope[] = [];
  /**
   * Every message in the order it arrived, direct replies included (a Socket.IO acknowledgement
   * where it arrived among the events), whether or not something took it: for tests of order.
   */
  readonly arrivals: Envelope[] = [];
  private waiters: { matcher: Matcher; resolve: (message: Envelope) => void }[] = [];
  private pingCount = 0;
  fingerprint = "";
  alias = "";
  publicKey = "";
  /** Resolves when the connection closes, with the WebSocket close code (ws) or the disconnect reason (sio). */
  abstract readonly closed: Promise<{ code: number | string; reason: string }>;

  abstract send(type: string, fields?: Fields): void;
  /** Sends and waits for the direct reply: the next message of one of `replyTypes` (or `error`). */
  abstract request(type: string, fields?: Fields, replyTypes?: string[]): Promise<Envelope>;
  abstract close(): void;
  /** Cuts the connection without a goodbye, as a broken network would: the TCP connection (ws), the Engine.IO transport (sio). */
  abstract drop(): void;

  /** Keepalive pings heard from the server so far: WebSocket pings over /ws, Engine.IO pings over Socket.IO. */
  get pings(): number {
    return this.pingCount;
  }

  protected heardPing(): void {
    this.pingCount++;
  }

  protected push(message: Envelope): void {
    this.arrivals.push(message);
    const index = this.waiters.findIndex((waiter) => matches(waiter.matcher, message));
    if (index >= 0) {
      const [waiter] = this.waiters.splice(index, 1);
      waiter?.resolve(message);
      return;
    }
    this.received.push(message);
  }

  next(matcher: Matcher, timeoutMs = 5_000): Promise<Envelope> {
    const index = this.received.findIndex((message) => matches(matcher, message));
    if (index >= 0) return Promise.resolve(this.received.splice(index, 1)[0] as Envelope);
    return new Promise((resolve, reject) => {
      const waiter = {
        matcher,
        resolve: (message: Envelope) => {
          clearTimeout(timer);
          resolve(message);
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((candidate) => candidate !== waiter);
        reject(new Error(`${this.transport} peer ${this.alias || "?"}: no ${typeof matcher === "string" ? matcher : "matching message"} within ${timeoutMs}ms; buffered: ${JSON.stringify(this.received.map((m) => m.type))}`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  /** Resolves true if no matching message arrives within `ms`. */
  async nothing(matcher: Matcher, ms = 300): Promise<boolean> {
    try {
      await this.next(matcher, ms);
      return false;
    } catch {
      return true;
    }
  }

  async register(options: { publicKey?: string; alias?: string; meta?: Record<string, unknown> } = {}): Promise<Envelope> {
    const publicKey = options.publicKey ?? `key-${randomUUID()}`;
    const reply = await this.request("register", { payload: { public_key: publicKey, alias: options.alias, meta: options.meta } }, ["registered"]);
    if (reply.type === "registered") {
      this.publicKey = publicKey;
      this.fingerprint = String(reply.payload?.["fingerprint"]);
      this.alias = String(reply.payload?.["alias"]);
    }
    return reply;
  }

  join(namespace: string, extra: Record<string, unknown> = {}): Promise<Envelope> {
    return this.request("join", { payload: { namespace, ...extra } }, ["peer_list"]);
  }
}

export class WsPeer extends TestPeer {
  readonly transport = "ws";
  readonly closed: Promise<{ code: number; reason: string }>;

  constructor(readonly socket: WebSocket) {
    super();
    socket.on("message", (data: Buffer, isBinary: boolean) => {
      this.push(isBinary ? { type: "__binary__" } : (JSON.parse(data.toString()) as Envelope));
    });
    socket.on("ping", () => this.heardPing());
    this.closed = new Promise((resolve) => socket.on("close", (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  send(type: string, fields: Fields = {}): void {
    this.socket.send(JSON.stringify({ type, ...fields }));
  }

  sendRaw(data: string | Buffer, binary = false): void {
    this.socket.send(data, { binary });
  }

  request(type: string, fields: Fields = {}, replyTypes: string[] = []): Promise<Envelope> {
    const reply = this.next((message) => message.type === "error" || replyTypes.includes(message.type));
    this.send(type, fields);
    return reply;
  }

  close(): void {
    this.socket.close();
  }

  drop(): void {
    this.socket.terminate();
  }
}

class SioPeer extends TestPeer {
  readonly transport = "sio";
  readonly closed: Promise<{ code: string; reason: string }>;

  constructor(readonly socket: Socket) {
    super();
    socket.onAny((event: string, body: Record<string, unknown> | undefined) => this.push({ type: event, ...(body ?? {}) }));
    socket.io.on("ping", () => this.heardPing());
    this.closed = new Promise((resolve) => socket.on("disconnect", (reason) => resolve({ code: reason, reason })));
  }

  send(type: string, fields: Fields = {}): void {
    this.socket.emit(type, fields);
  }

  /** Uses a Socket.IO acknowledgement: the direct reply comes back to the callback. */
  request(type: string, fields: Fields = {}): Promise<Envelope> {
    return new Promise((resolve, reject) => {
      // The acknowledgement callback runs as its packet is read, before any later packet's event:
      // recorded there, its place in `arrivals` is the true one.
      this.socket.timeout(5_000).emit(type, fields, (error: Error | null, reply: Envelope) => {
        if (error !== null) {
          reject(error);
          return;
        }
        this.arrivals.push(reply);
        resolve(reply);
      });
    });
  }

  close(): void {
    this.socket.disconnect();
  }

  drop(): void {
    this.socket.io.engine.close();
  }
}

export async function connectWs(url: string, options: WebSocket.ClientOptions = {}): Promise<WsPeer> {
  const socket = new WebSocket(url, options);
  const peer = new WsPeer(socket);
  await new Promise<void>((resolve, reject) => {
    socket.once("open", () => resolve());
    socket.once("error", reject);
  });
  return peer;
}

export interface SioOptions {
  transports?: ("polling" | "websocket")[];
  localAddress?: string;
  /** The handshake's `auth` (an access token: `{token}`). */
  auth?: Record<string, unknown>;
  /** Headers of every request (an `Origin`, `Authorization`, `X-Forwarded-For`). */
  extraHeaders?: Record<string, string>;
}

/** The Socket.IO client options of `connectSio`, for a test that drives the client itself. */
export function sioClientOptions(options: SioOptions = {}): Parameters<typeof ioClient>[1] {
  // engine.io-client hands `agent` to its Node XHR (polling) and `agent`/`localAddress` to ws,
  // although its types declare `agent` as string | boolean.
  const source = options.localAddress === undefined ? {} : { localAddress: options.localAddress, agent: new HttpAgent({ localAddress: options.localAddress }) as unknown as boolean };
  return {
    transports: options.transports ?? ["websocket"],
    reconnection: false,
    forceNew: true,
    ...source,
    ...(options.auth === undefined ? {} : { auth: options.auth }),
    ...(options.extraHeaders === undefined ? {} : { extraHeaders: options.extraHeaders }),
  };
}

export async function connectSio(httpUrl: string, options: SioOptions = {}): Promise<SioPeer> {
  const socket = ioClient(httpUrl, sioClientOptions(options));
  const peer = new SioPeer(socket);
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", () => resolve());
    socket.once("connect_error", reject);
  });
  return peer;
}

export interface ServerUrls {
  http: string;
  ws: string;
}

/** Connects a peer over the given transport. */
export function connect(server: ServerUrls, transport: Transport): Promise<TestPeer> {
  return transport === "ws" ? connectWs(server.ws) : connectSio(server.http);
}

/** Connects and registers a peer; optionally joins a namespace. */
export async function registeredPeer(server: ServerUrls, transport: Transport, options: { alias?: string; namespace?: string; publicKey?: string } = {}): Promise<TestPeer> {
  const peer = await connect(server, transport);
  const reply = await peer.register({ alias: options.alias, publicKey: options.publicKey });
  if (reply.type !== "registered") throw new Error(`register failed: ${JSON.stringify(reply)}`);
  if (options.namespace !== undefined) await peer.join(options.namespace);
  return peer;
}

/** Waits until a Socket.IO client has moved from long-polling to WebSocket. */
export async function upgraded(peer: SioPeer): Promise<void> {
  const engine = peer.socket.io.engine;
  if (engine.transport.name === "websocket") return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no upgrade to websocket; transport ${engine.transport.name}`)), 5_000);
    engine.once("upgrade", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

export const sha256 = (text: string): string => createHash("sha256").update(text, "utf8").digest("hex");

export function closeAll(peers: Iterable<TestPeer | undefined>): void {
  for (const peer of peers) peer?.close();
}
