import { pino } from "pino";
import { loadConfig, type Config } from "../../src/config/load.ts";
import type { Connection } from "../../src/core/connection.ts";
import { Hub } from "../../src/core/hub.ts";
import type { BanCheck } from "../../src/core/moderation.ts";
import type { Session } from "../../src/core/session.ts";
import type { Delivery, JoinFence, PeerAddress } from "../../src/delivery/delivery.ts";
import type { RecipientFilter } from "../../src/delivery/join-fence.ts";
import { MemoryBudgetStore } from "../../src/backends/memory/memory-budget-store.ts";
import { createMemoryRegistrationLimiter, pairedLimits, type RegistrationLimiter } from "../../src/backends/registration-limiter.ts";
import type { AccessClaims, AccessTokenVerifier } from "../../src/trust/access-tokens.ts";
import { decodeRequest } from "../../src/protocol/decoder.ts";
import type { Body } from "../../src/protocol/envelope.ts";
import type { ClientRequest } from "../../src/protocol/requests.ts";
import type { CloseCode, ErrorCode } from "../../src/protocol/errors.ts";
import { MemoryStore } from "../../src/backends/memory/memory-store.ts";
import type { JoinOptions, JoinResult } from "../../src/backends/state-store.ts";
import { FakeClock } from "./fake-clock.ts";

/**
 * The core without transports or sockets, for unit tests of its handlers: a real Hub over a real
 * MemoryStore, a fake Delivery that routes emits to fake connections the way the Socket.IO adapter
 * does (rooms, `except` rooms, the JoinGate's recipient filter), and a FakeClock.
 */

/** What a fake connection was sent, parsed back from JSON as a client would see it. */
export interface Received {
  type: string;
  body: Record<string, unknown>;
  /** The exact text, for a message sent already serialized. */
  json?: string;
}

export class FakeConnection implements Connection {
  readonly rooms = new Set<string>();
  readonly received: Received[] = [];
  closeCode: CloseCode | undefined;
  /** The client's address, as a transport reports it. */
  remoteAddress: string | undefined;
  /** What the transport does once the server closes it: end the session. */
  onClose: (() => void) | undefined;

  constructor(
    readonly id: string,
    readonly transport: "ws" | "socket.io" = "ws",
  ) {
    this.rooms.add(id);
  }

  send(type: string, body: Body): void {
    if (this.closeCode === undefined) this.received.push({ type, body: JSON.parse(JSON.stringify(body)) as Record<string, unknown> });
  }

  sendEncoded(type: string, bodyJson: string): void {
    if (this.closeCode === undefined) this.received.push({ type, body: JSON.parse(bodyJson) as Record<string, unknown>, json: bodyJson });
  }

  join(room: string): void {
    this.rooms.add(room);
  }

  leave(room: string): void {
    this.rooms.delete(room);
  }

  close(code: CloseCode): void {
    if (this.closeCode !== undefined) return;
    this.closeCode = code;
    this.rooms.clear();
    this.onClose?.();
  }

  /** The messages of one type received so far. */
  of(type: string): Received[] {
    return this.received.filter((message) => message.type === type);
  }
}

export interface Emitted {
  rooms: readonly string[];
  type: string;
  body: Body;
  except: readonly string[];
  fence: JoinFence | undefined;
}

/** Delivery to the fake connections of one process, adapter-like; remote deliveries are recorded. */
export class FakeDelivery implements Delivery {
  readonly emitted: Emitted[] = [];
  readonly toPeers: { target: PeerAddress; type: string; body: Body; bodyJson: string | undefined }[] = [];
  readonly closedElsewhere: string[] = [];
  readonly connections: FakeConnection[] = [];
  /** The JoinGate, as installRecipientFilter gives it to the adapter. */
  filter: RecipientFilter | undefined;

  emit(rooms: string | readonly string[], type: string, body: Body, except: readonly string[] = [], fence?: JoinFence): undefined {
    const list = typeof rooms === "string" ? [rooms] : rooms;
    this.emitted.push({ rooms: list, type, body, except, fence });
    if (list.length > 0) this.deliver(list, except, type, body, fence);
    return undefined;
  }

  toPeer(target: PeerAddress, type: string, body: Body, bodyJson?: string): void {
    this.toPeers.push({ target, type, body, bodyJson });
  }

  emitLocal(room: string, type: string, body: Body): void {
    this.emit(room, type, body);
  }

  join(selector: string, room: string): undefined {
    for (const connection of this.connections) if (connection.rooms.has(selector)) connection.join(room);
    return undefined;
  }

  leave(selector: string, room: string): undefined {
    for (const connection of this.connections) if (connection.rooms.has(selector)) connection.leave(room);
    return undefined;
  }

  closeElsewhere(connectionId: string, _code: ErrorCode, _closeCode: CloseCode, _message: string): void {
    this.closedElsewhere.push(connectionId);
  }

  /** The emits of one type so far. */
  of(type: string): Emitted[] {
    return this.emitted.filter((emit) => emit.type === type);
  }

  private deliver(rooms: readonly string[], except: readonly string[], type: string, body: Body, fence: JoinFence | undefined): void {
    const filter = this.filter;
    const routed = filter !== undefined && (fence !== undefined || !filter.idle());
    const roomSet = new Set(rooms);
    for (const connection of this.connections) {
      if (!rooms.some((room) => connection.rooms.has(room)) || except.some((room) => connection.rooms.has(room))) continue;
      const deliver = (): void => connection.send(type, body);
      const decision = routed ? filter.route(connection.id, roomSet, fence) : true;
      if (decision === true) deliver();
      else if (decision !== false) decision.push({ fence, deliver });
    }
  }
}

/** A test peer: its connection and session. */
export interface Peer {
  connection: FakeConnection;
  session: Session;
  fingerprint: string;
  alias: string;
}

export class CoreHarness {
  readonly clock = new FakeClock();
  readonly store: MemoryStore;
  readonly delivery = new FakeDelivery();
  readonly config: Config;
  readonly hub: Hub;
  private ids = 0;

  constructor(
    options: {
      store?: MemoryStore;
      config?: Record<string, unknown>;
      bans?: BanCheck;
      /** Verifies `refresh` tokens (access tokens on). */
      accessTokens?: AccessTokenVerifier;
      addressRegistrationLimiter?: RegistrationLimiter;
    } = {},
  ) {
    const store = (this.store = options.store ?? new MemoryStore());
    this.config = loadConfig({ env: {}, overrides: { ping_interval: "5s", pong_wait: "10s", ...options.config } });
    this.clock.now = 1_700_000_000_000;
    this.hub = new Hub({
      config: this.config,
      store,
      delivery: this.delivery,
      budgetStore: new MemoryBudgetStore(),
      registrationLimits: pairedLimits(options.addressRegistrationLimiter ?? { consume: () => Promise.resolve(true) }, createMemoryRegistrationLimiter()),
      logger: pino({ level: "silent" }),
      nodeId: "node-test",
      clock: { now: () => this.clock.now, setTimer: this.clock.setTimer },
      ...(options.bans === undefined ? {} : { bans: options.bans }),
      ...(options.accessTokens === undefined ? {} : { accessTokens: options.accessTokens }),
    });
    this.delivery.filter = this.hub.joinGate;
  }

  /** Opens a connection as a transport does; `access`: what its access token granted (access tokens on). */
  connect(access?: AccessClaims): { connection: FakeConnection; session: Session } {
    const connection = new FakeConnection(`conn-${++this.ids}`);
    this.delivery.connections.push(connection);
    const session = this.hub.open(connection, false, access);
    if (session === undefined) throw new Error("refused");
    connection.onClose = () => void this.hub.close(session);
    return { connection, session };
  }

  /**
   * Sends one message as a transport does (through the decoder) and resolves with its direct reply,
   * `ok` or `error`, acknowledged the Socket.IO way; the reply is also logged in the connection's
   * `received`, in order with everything else it was sent.
   */
  request(target: { connection: FakeConnection; session: Session }, type: string, envelope: Record<string, unknown> = {}, payloadJson?: string): Promise<Received> {
    return new Promise((resolve) => {
      this.hub.receive(target.session, decodeRequest(type, envelope, payloadJson), (reply) => {
        const { type: replyType, ...body } = reply;
        const received = { type: String(replyType), body: JSON.parse(JSON.stringify(body)) as Record<string, unknown> };
        target.connection.received.push(received);
        resolve(received);
      });
    });
  }

  /** Hands a typed request to the hub as a dialect binding does (no decoder), and resolves with its direct reply. */
  submit(target: { connection: FakeConnection; session: Session }, request: ClientRequest): Promise<Received> {
    return new Promise((resolve) => {
      this.hub.receive(target.session, request, (reply) => {
        const { type: replyType, ...body } = reply;
        const received = { type: String(replyType), body: JSON.parse(JSON.stringify(body)) as Record<string, unknown> };
        target.connection.received.push(received);
        resolve(received);
      });
    });
  }

  /** Connects and registers a peer, optionally joined to namespaces. */
  async peer(key: string, ...namespaces: string[]): Promise<Peer> {
    const opened = this.connect();
    const reply = await this.request(opened, "register", { payload: { public_key: key } });
    if (reply.type !== "registered") throw new Error(`register failed: ${JSON.stringify(reply)}`);
    const { fingerprint, alias } = reply.body["payload"] as { fingerprint: string; alias: string };
    for (const namespace of namespaces) await this.request(opened, "join", { payload: { namespace } });
    return { ...opened, fingerprint, alias };
  }
}

/** The error code of a reply, or undefined when it is not an error. */
export const errorCode = (reply: Received): number | undefined =>
  reply.type === "error" ? (reply.body["payload"] as { code: number }).code : undefined;

/** A promise and its resolve, for holding a store call at a chosen moment. */
export function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

/** Lets every pending promise continuation run. */
export const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * A MemoryStore whose next joinNamespace of a chosen peer waits, before the store is asked (the
 * join is not in the state yet) or after (it is, but its reply is late), until released.
 */
export class HoldingStore extends MemoryStore {
  private readonly holds = new Map<string, { when: "before" | "after"; promise: Promise<void> }>();

  hold(fingerprint: string, when: "before" | "after"): () => void {
    const held = gate();
    this.holds.set(fingerprint, { when, promise: held.promise });
    return held.open;
  }

  override async joinNamespace(name: string, fingerprint: string, options: JoinOptions): Promise<JoinResult> {
    const hold = this.holds.get(fingerprint);
    this.holds.delete(fingerprint);
    if (hold?.when === "before") await hold.promise;
    const result = await super.joinNamespace(name, fingerprint, options);
    if (hold?.when === "after") await hold.promise;
    return result;
  }
}
