import { io, type Socket } from "socket.io-client";
import WebSocket from "ws";
import type { Endpoint } from "../core/targets.ts";
import type { Transport } from "./protocol.ts";
import { ReplyWaiters } from "./reply-waiters.ts";
import { connectWire, type WsRoute } from "./wire.ts";

/** A received message: for /ws the parsed frame, for Socket.IO the event's argument plus `type`. */
export interface Envelope {
  type: string;
  from?: string;
  to?: string;
  namespace?: string;
  payload?: Record<string, unknown>;
  ts?: number;
}

export interface Fields {
  to?: string;
  namespace?: string;
  payload?: unknown;
}

/**
 * A load client over either transport, as cheap per message as the transport allows: the load
 * process shares one core with hundreds of clients, so its cost bounds what can be measured.
 */
export interface BenchClient {
  readonly transport: Transport;
  /**
   * True when onText/sendText work, in the transport's text protocol (see wire.ts): the /ws JSON
   * envelope, or for Socket.IO the packet text `42["type",{...}]`. False for socket.io-client.
   */
  readonly textFrames: boolean;
  fingerprint: string;
  /** Messages that are not replies to request(): `body` is the envelope (ws) or the event argument (sio). */
  onMessage: (type: string, body: Envelope) => void;
  /** When textFrames: sees each text frame before parsing; returning true consumes it. */
  onText: ((text: string) => boolean) | undefined;
  /** Sends and resolves with the direct reply (a Socket.IO ack; on /ws the next message of one of `replyTypes` or `error`). */
  request(type: string, fields: Fields, replyTypes: readonly string[], timeoutMs?: number): Promise<Envelope>;
  send(type: string, fields: Fields): void;
  /** When textFrames: sends an already encoded frame. */
  sendText(text: string): void;
  close(): void;
  /** Ends the connection with no closing handshake, as a network that fails does (the server sees it drop). */
  drop(): void;
  /** Resolves when the connection is gone, with a description. */
  readonly closed: Promise<string>;
  readonly isClosed: boolean;
  /** Why the connection closed, once it has. */
  readonly closeReason: string | undefined;
}

const ignore = (): void => undefined;

/** A zero masking key makes ws skip masking client frames (the server still runs its unmasking pass). */
const zeroMask = (mask: Buffer): void => {
  mask.fill(0);
};

class WsClient implements BenchClient {
  readonly transport = "ws";
  readonly textFrames = true;
  fingerprint = "";
  onMessage: (type: string, body: Envelope) => void = ignore;
  onText: ((text: string) => boolean) | undefined;
  readonly closed: Promise<string>;
  isClosed = false;
  closeReason: string | undefined;
  private readonly waiters = new ReplyWaiters();

  constructor(private readonly socket: WebSocket) {
    socket.on("message", (data: Buffer) => this.receive(data.toString()));
    socket.on("error", ignore);
    this.closed = new Promise((resolve) =>
      socket.once("close", (code: number, reason: Buffer) => {
        this.isClosed = true;
        this.closeReason = `ws close ${code}${reason.length > 0 ? ` ${reason.toString()}` : ""}`;
        resolve(this.closeReason);
      }),
    );
  }

  private receive(text: string): void {
    if (this.onText !== undefined && this.onText(text)) return;
    const message = JSON.parse(text) as Envelope;
    if (this.waiters.settle(message.type, () => message)) return;
    this.onMessage(message.type, message);
  }

  request(type: string, fields: Fields, replyTypes: readonly string[], timeoutMs = 30_000): Promise<Envelope> {
    const reply = this.waiters.wait(type, replyTypes, timeoutMs);
    this.send(type, fields);
    return reply;
  }

  send(type: string, fields: Fields): void {
    this.socket.send(JSON.stringify({ type, ...fields }));
  }

  sendText(text: string): void {
    this.socket.send(text);
  }

  close(): void {
    this.socket.close();
  }

  drop(): void {
    this.socket.terminate();
  }
}

class SioClient implements BenchClient {
  readonly transport = "sio";
  readonly textFrames = false;
  fingerprint = "";
  onMessage: (type: string, body: Envelope) => void = ignore;
  onText: undefined;
  readonly closed: Promise<string>;
  isClosed = false;
  closeReason: string | undefined;

  constructor(private readonly socket: Socket) {
    socket.onAny((type: string, body: Envelope) => this.onMessage(type, body));
    this.closed = new Promise((resolve) =>
      socket.once("disconnect", (reason) => {
        this.isClosed = true;
        this.closeReason = `socket.io disconnect: ${reason}`;
        resolve(this.closeReason);
      }),
    );
  }

  request(type: string, fields: Fields, _replyTypes: readonly string[], timeoutMs = 30_000): Promise<Envelope> {
    return new Promise((resolve, reject) => {
      this.socket.timeout(timeoutMs).emit(type, fields, (error: Error | null, reply: Envelope) => {
        if (error) reject(new Error(`no ack for ${type} within ${timeoutMs} ms`));
        else resolve(reply);
      });
    });
  }

  send(type: string, fields: Fields): void {
    this.socket.emit(type, fields);
  }

  sendText(): void {
    throw new Error("socket.io-client does not send raw packets");
  }

  close(): void {
    this.socket.disconnect();
  }

  drop(): void {
    // Closes the engine under the socket: no Socket.IO disconnect packet reaches the server.
    this.socket.io.engine.close();
  }
}

/**
 * Which client implementation the load process uses: "wire" (bench/load/wire.ts, the default: as
 * cheap as possible) or "library" (the `ws` and socket.io-client packages, as applications use them).
 */
export type ClientKind = "wire" | "library";

/**
 * Opens one client; rejects if the connection fails. `localAddress` picks the loopback source
 * address; `route` another WebSocket endpoint than `/ws` for the "ws" transport (a dialect's).
 */
export function connectClient(kind: ClientKind, transport: Transport, endpoint: Endpoint, localAddress?: string, timeoutMs = 20_000, route?: WsRoute): Promise<BenchClient> {
  if (kind === "wire") return connectWire(transport, endpoint, localAddress, timeoutMs, undefined, route);
  if (transport === "ws") {
    const socket = new WebSocket(`ws://${endpoint.host}:${endpoint.port}${route?.path ?? "/ws"}`, {
      perMessageDeflate: false,
      generateMask: zeroMask,
      skipUTF8Validation: true,
      handshakeTimeout: timeoutMs,
      ...(localAddress === undefined ? {} : { localAddress }),
    });
    return new Promise((resolve, reject) => {
      socket.once("open", () => {
        const client = new WsClient(socket);
        client.onText = route?.onText;
        resolve(client);
      });
      socket.once("error", reject);
    });
  }
  const socket = io(`http://${endpoint.host}:${endpoint.port}`, {
    path: "/socket.io/",
    transports: ["websocket"],
    forceNew: true,
    reconnection: false,
    timeout: timeoutMs,
    ...(localAddress === undefined ? {} : { localAddress }),
  });
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(new SioClient(socket)));
    socket.once("connect_error", (error) => {
      socket.disconnect();
      reject(error);
    });
  });
}

/** register, then remember the fingerprint; throws on an error reply. */
export async function register(client: BenchClient, publicKey: string): Promise<void> {
  const reply = await client.request("register", { payload: { public_key: publicKey } }, ["registered"]);
  if (reply.type !== "registered") throw new Error(`register failed: ${JSON.stringify(reply)}`);
  client.fingerprint = String(reply.payload?.["fingerprint"]);
}

export async function join(client: BenchClient, namespace: string): Promise<void> {
  const reply = await client.request("join", { payload: { namespace } }, ["peer_list"]);
  if (reply.type !== "peer_list") throw new Error(`join failed: ${JSON.stringify(reply)}`);
}

/**
 * Runs `task(i)` for i in [0, count) with at most `concurrency` at once; stops at the first
 * failure or when `deadline` (performance.now() ms) passes. Returns the results in index order.
 */
export async function forEachBounded<T>(
  count: number,
  concurrency: number,
  deadline: number,
  task: (index: number) => Promise<T>,
  onDone?: (done: number) => void,
): Promise<T[]> {
  const results: T[] = new Array<T>(count);
  let next = 0;
  let done = 0;
  let failed = false;
  const lane = async (): Promise<void> => {
    while (next < count && !failed) {
      if (performance.now() > deadline) {
        failed = true;
        throw new Error(`set-up did not finish in time (${done}/${count} done)`);
      }
      const index = next++;
      try {
        results[index] = await task(index);
      } catch (error) {
        failed = true;
        throw error;
      }
      done++;
      onDone?.(done);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, lane));
  return results;
}

/** Closes every client and waits (bounded) for the connections to go. */
export async function closeAll(clients: readonly (BenchClient | undefined)[], waitMs = 5_000): Promise<void> {
  const open = clients.filter((client): client is BenchClient => client !== undefined && !client.isClosed);
  for (const client of open) client.close();
  await Promise.race([Promise.all(open.map((client) => client.closed)), new Promise((done) => setTimeout(done, waitMs).unref())]);
}
