import WebSocket from "ws";
import { PeerClient, type PeerClientEvents, type PeerClientOptions } from "../../client/src/index.ts";

/** The SDK's two transports. */
export type SdkTransport = "ws" | "socket.io";
export const SDK_TRANSPORTS: readonly SdkTransport[] = ["ws", "socket.io"];

type EventName = keyof PeerClientEvents;

/**
 * An SDK client with every event it emits kept in order, so that a test can wait for an event
 * that may already have happened: `next()` takes the first kept (or future) one that matches.
 */
export class RecordedClient {
  readonly events: { type: EventName; value: unknown }[] = [];
  private waiters: { type: EventName; match: (value: never) => boolean; resolve: (value: never) => void }[] = [];

  constructor(readonly client: PeerClient) {
    for (const type of ["state", "registered", "restored", "peer_joined", "peer_left", "signal", "relay", "broadcast", "matched", "kick", "error"] as const) {
      client.on(type, (value) => this.push(type, value));
    }
  }

  get fingerprint(): string {
    const fingerprint = this.client.fingerprint;
    if (fingerprint === undefined) throw new Error("not registered");
    return fingerprint;
  }

  private push(type: EventName, value: unknown): void {
    const index = this.waiters.findIndex((waiter) => waiter.type === type && waiter.match(value as never));
    if (index >= 0) {
      const [waiter] = this.waiters.splice(index, 1);
      waiter?.resolve(value as never);
      return;
    }
    this.events.push({ type, value });
  }

  next<K extends EventName>(type: K, match: (value: PeerClientEvents[K]) => boolean = () => true, timeoutMs = 5_000): Promise<PeerClientEvents[K]> {
    const index = this.events.findIndex((event) => event.type === type && match(event.value as PeerClientEvents[K]));
    if (index >= 0) return Promise.resolve(this.events.splice(index, 1)[0]?.value as PeerClientEvents[K]);
    return new Promise((resolve, reject) => {
      const waiter = {
        type,
        match: match as (value: never) => boolean,
        resolve: (value: never) => {
          clearTimeout(timer);
          resolve(value);
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((other) => other !== waiter);
        reject(new Error(`no ${type} event within ${timeoutMs} ms; kept: ${JSON.stringify(this.events.map((event) => event.type))}`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  /** True when no matching event arrives within `ms` (nor was kept). */
  async nothing<K extends EventName>(type: K, match: (value: PeerClientEvents[K]) => boolean = () => true, ms = 500): Promise<boolean> {
    try {
      await this.next(type, match, ms);
      return false;
    } catch {
      return true;
    }
  }
}

/** SDK options for a Node client of `url` over `transport`: ws's WebSocket, Socket.IO on WebSocket only (one TCP connection to cut). */
export function sdkOptions(url: string, transport: SdkTransport, extra: PeerClientOptions = {}): PeerClientOptions {
  return { url, transport, WebSocket, socketIo: { transports: ["websocket"] }, requestTimeoutMs: 5_000, ...extra };
}

/** A pool of SDK clients, all closed by `closeAll()`. */
export class SdkPool {
  private readonly open: PeerClient[] = [];

  /** A client (not registered yet). */
  client(url: string, transport: SdkTransport, extra: PeerClientOptions = {}): RecordedClient {
    const client = new PeerClient(sdkOptions(url, transport, extra));
    this.open.push(client);
    return new RecordedClient(client);
  }

  /** A registered client. */
  async registered(url: string, transport: SdkTransport, extra: PeerClientOptions = {}): Promise<RecordedClient> {
    const recorded = this.client(url, transport, extra);
    await recorded.client.register();
    return recorded;
  }

  closeAll(): void {
    for (const client of this.open.splice(0)) client.close();
  }
}
