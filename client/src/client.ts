import { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from "./backoff.ts";
import type { ConnectionState, MatchResult, PeerClientEvents, PeerClientOptions, Restored } from "./client-types.ts";
import { openTransport, registerOn, type RegisterDetails } from "./connect.ts";
import { Emitter } from "./emitter.ts";
import { PeerError } from "./errors.ts";
import { Identity } from "./identity.ts";
import { Memberships } from "./memberships.ts";
import {
  CloseCode,
  type Criteria,
  type IceServerEntry,
  type Meta,
  type PeerList,
  type RegisteredPayload,
  type RequestBody,
  type RequestType,
  type RoomDescription,
  type ServerBodies,
  type ServerMessage,
} from "./protocol.ts";
import { rejoin, relist, type RestoreSteps } from "./restore.ts";
import type { ConnectionEnd, Transport } from "./transport.ts";

export type { ConnectionState, MatchResult, PeerClientEvents, PeerClientOptions, Received, Restored } from "./client-types.ts";

/** Server close codes after which reconnecting would only fight another connection or a ban. */
const FINAL_CLOSE_CODES: ReadonlySet<number> = new Set([CloseCode.Replaced, CloseCode.Disconnected]);

/** A request waiting for the connection to be registered (again). */
interface Queued {
  type: RequestType;
  body: RequestBody;
  resolve: (reply: ServerMessage | undefined) => void;
  reject: (error: PeerError) => void;
}

/**
 * A peer of a peer-server: registers a key (signed with proof of possession), joins namespaces and
 * rooms, signals and relays to other peers, broadcasts, matches, over raw `/ws` or Socket.IO. Every
 * request is a promise of its answer; what others send arrives as typed events.
 *
 * When the connection drops, the client reconnects with backoff and registers with the resume
 * token of its last registration: the server, within its grace, gives it back its session with
 * every membership and the messages sent to it meanwhile. When the server does not resume it, the
 * client joins its namespaces and rooms again and repeats its waiting match requests itself.
 * Requests made while it reconnects wait and go out once it is back.
 */
export class PeerClient extends Emitter<PeerClientEvents> {
  private readonly options: PeerClientOptions;
  private readonly backoff: Required<BackoffOptions> | undefined;
  private readonly memberships = new Memberships();
  private currentState: ConnectionState = "idle";
  private transport: Transport | undefined;
  private identity: Identity | undefined;
  private registration: RegisteredPayload | undefined;
  private requestedAlias: string | undefined;
  private meta: Meta | undefined;
  private queue: Queued[] = [];
  private heartbeat: ReturnType<typeof setInterval> | undefined;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private starting: Promise<RegisteredPayload> | undefined;

  constructor(options: PeerClientOptions = {}) {
    super();
    this.options = options;
    this.identity = options.identity;
    this.requestedAlias = options.alias;
    this.meta = options.meta;
    this.backoff = options.reconnect === false ? undefined : { ...DEFAULT_BACKOFF, ...(typeof options.reconnect === "object" ? options.reconnect : {}) };
  }

  get state(): ConnectionState {
    return this.currentState;
  }

  /** The registered fingerprint (lowercase hex SHA-256 of the public key); undefined before the first registration. */
  get fingerprint(): string | undefined {
    return this.registration?.fingerprint;
  }

  get alias(): string | undefined {
    return this.registration?.alias;
  }

  /** True when the server verified the client's proof of key possession. */
  get verified(): boolean {
    return this.registration?.verified === true;
  }

  /** The STUN/TURN servers the server handed out at the last registration, when it is configured with any. */
  get iceServers(): readonly IceServerEntry[] | undefined {
    return this.registration?.ice_servers;
  }

  /** The namespaces and rooms the client is in. */
  get scopes(): { namespaces: string[]; rooms: string[] } {
    return { namespaces: [...this.memberships.namespaces.keys()], rooms: [...this.memberships.rooms.keys()] };
  }

  /**
   * Connects and registers; resolves with the `registered` payload (`verified` true when the proof
   * was accepted). Calling it again returns the current registration. `alias` and `meta` override
   * the constructor's for this and later registrations.
   */
  register(options: { alias?: string; meta?: Meta } = {}): Promise<RegisteredPayload> {
    if (this.currentState === "closed") return Promise.reject(new PeerError("closed", "the client is closed", "register"));
    if (this.registration !== undefined && this.currentState !== "idle") return Promise.resolve(this.registration);
    if (options.alias !== undefined) this.requestedAlias = options.alias;
    if (options.meta !== undefined) this.meta = options.meta;
    this.starting ??= this.start().finally(() => (this.starting = undefined));
    return this.starting;
  }

  /** Joins a public namespace; resolves with its member list. */
  async join(namespace: string, options: { appType?: string; meta?: Meta } = {}): Promise<PeerList> {
    const reply = await this.call("join", { payload: { namespace, app_type: options.appType, meta: options.meta } });
    this.memberships.joined(namespace, { appType: options.appType, meta: options.meta });
    return (reply as ServerMessage<"peer_list">).payload;
  }

  /** Leaves a namespace or room (the others get `peer_left`; a waiting match there is dropped). */
  async leave(scope: string): Promise<void> {
    await this.call("leave", { payload: { namespace: scope } });
    this.memberships.left(scope);
  }

  /** Lists a namespace's (or a room's, for its members) members, `limit` of them (default 50, at most 1,000). */
  async discover(namespace: string, limit?: number): Promise<PeerList> {
    const reply = await this.call("discover", { payload: { namespace, limit } });
    return (reply as ServerMessage<"peer_list">).payload;
  }

  /** Sends a signaling payload (offer, answer, candidate, ...) to a peer that shares a namespace or room. */
  async signal(to: string, payload: Record<string, unknown>): Promise<void> {
    await this.call("signal", { to, payload });
  }

  /** Relays an application payload to a peer that shares a namespace or room. */
  async relay(to: string, payload: Record<string, unknown>): Promise<void> {
    await this.call("relay", { to, payload });
  }

  /** Sends `data` to every other member of a namespace or room, but those in `exclude` (fingerprints). */
  async broadcast(namespace: string, data: unknown, exclude?: readonly string[]): Promise<void> {
    await this.call("broadcast", { payload: { namespace, data, exclude } });
  }

  /**
   * Asks for a group of `groupSize` members of `namespace` with equal `criteria`. Resolves with
   * `waiting` (the `matched` event comes when the group forms) or, when this request completed a
   * group, with the group (the `matched` event fires too).
   */
  async match(namespace: string, groupSize: number, criteria?: Criteria): Promise<MatchResult> {
    const reply = await this.call("match", { payload: { namespace, group_size: groupSize, criteria } });
    return this.matchResult(reply, { groupSize, criteria });
  }

  /** Stops waiting for a group in `namespace`. */
  async cancelMatch(namespace: string): Promise<void> {
    await this.call("match_cancel", { payload: { namespace } });
    this.memberships.ticketDone(namespace);
  }

  /** Creates a private room (id generated when not given; `maxSize` default 20, at most 30) and enters it as its owner. */
  async createRoom(options: { roomId?: string; maxSize?: number } = {}): Promise<RoomDescription> {
    const reply = (await this.call("create_room", { payload: { room_id: options.roomId, max_size: options.maxSize } })) as ServerMessage<"room_created">;
    this.memberships.enteredRoom(reply.payload.room_id, { created: true, maxSize: reply.payload.max_size });
    return reply.payload;
  }

  /** Enters a private room; resolves with its member list. */
  async joinRoom(roomId: string): Promise<PeerList> {
    const reply = await this.call("join_room", { payload: { room_id: roomId } });
    this.memberships.enteredRoom(roomId, { created: false, maxSize: undefined });
    return (reply as ServerMessage<"peer_list">).payload;
  }

  /** A room's owner, size and member count. */
  async roomInfo(roomId: string): Promise<ServerBodies["room_info"]["payload"]> {
    return ((await this.call("room_info", { payload: { room_id: roomId } })) as ServerMessage<"room_info">).payload;
  }

  /** Removes a member from a room this client owns. */
  async kick(roomId: string, fingerprint: string): Promise<void> {
    await this.call("kick", { payload: { room_id: roomId, fingerprint } });
  }

  /** Merges `meta` into the peer's metadata (a key set to null is removed); later member lists show it. */
  async metadata(meta: Meta): Promise<void> {
    await this.call("metadata", { payload: { meta } });
    const merged: Meta = { ...this.meta };
    for (const [key, value] of Object.entries(meta)) {
      if (value === null) delete merged[key];
      else merged[key] = value;
    }
    this.meta = merged;
  }

  /** Round trip to the server; resolves with its duration in ms. */
  async ping(): Promise<number> {
    const started = Date.now();
    await this.call("ping", {});
    return Date.now() - started;
  }

  /** Hands the server a newer access token for this connection, before the current one expires. */
  async refresh(token: string): Promise<void> {
    await this.call("refresh", { payload: { token } });
  }

  /** Closes the connection for good: no reconnection; waiting requests fail with code `closed`. Safe to call twice. */
  close(): void {
    this.finish(new PeerError("closed", "the client was closed"), false);
  }

  // Connections.

  private async start(): Promise<RegisteredPayload> {
    this.setState("connecting");
    try {
      this.identity ??= await Identity.generate();
      const registered = await this.connect(false);
      // close() while registering: the client stays closed.
      if (this.currentState !== "connecting") throw new PeerError("closed", "the client was closed", "register");
      this.setState("open");
      this.flushQueue();
      return registered;
    } catch (error) {
      if (this.currentState === "connecting") this.setState("idle");
      throw error;
    }
  }

  /** Opens a transport and registers on it (resuming when asked and possible); the new transport becomes the client's. */
  private async connect(resume: boolean): Promise<RegisteredPayload> {
    // Known once open: what the connection says before that (a refusal before it closes) is not the client's.
    let opened: Transport | undefined = undefined;
    const handlers = {
      message: (message: ServerMessage) => {
        if (opened !== undefined && this.transport === opened) this.dispatch(message);
      },
      closed: (end: ConnectionEnd) => {
        if (opened !== undefined && this.transport === opened) this.connectionLost(end);
      },
    };
    const transport = await openTransport(this.options, handlers);
    opened = transport;
    this.transport = transport;
    try {
      let registered: RegisteredPayload;
      const token = resume ? this.registration?.resume_token : undefined;
      try {
        registered = await registerOn(transport, this.registerDetails(token));
      } catch (error) {
        // A token the server no longer honours (expired grace, another node's choice to refuse it):
        // register afresh, with a new challenge since the last nonce was spent.
        if (token === undefined || !(error instanceof PeerError) || typeof error.code !== "number") throw error;
        registered = await registerOn(transport, this.registerDetails(undefined));
      }
      if (this.currentState === "closed") throw new PeerError("closed", "the client was closed", "register");
      if (this.transport !== transport) throw new PeerError("connection_lost", "the connection dropped while registering");
      this.registration = registered;
      this.startHeartbeat();
      this.emit("registered", registered);
      return registered;
    } catch (error) {
      if (this.transport === transport) this.transport = undefined;
      transport.close(new PeerError("connection_lost", "registration failed"));
      throw error;
    }
  }

  private registerDetails(resumeToken: string | undefined): RegisterDetails {
    return { identity: this.identity as Identity, alias: this.requestedAlias, meta: this.meta, keyProof: this.options.keyProof !== false, resumeToken, timeoutMs: this.timeoutMs };
  }

  private connectionLost(end: ConnectionEnd): void {
    this.transport = undefined;
    this.stopHeartbeat();
    // While connecting or restoring, the attempt in progress fails on its own and decides what follows.
    if (this.currentState !== "open") return;
    const announced = end.announced ?? end.code;
    const error = new PeerError("connection_lost", `connection lost (${end.code ?? end.reason}${end.announced !== undefined ? `, server said ${end.announced}` : ""})`, undefined, announced);
    const final =
      (announced !== undefined && FINAL_CLOSE_CODES.has(announced)) || (announced === CloseCode.TokenExpired && typeof this.options.token !== "function");
    if (this.backoff === undefined || final) {
      this.finish(error, true);
      return;
    }
    this.emit("error", error);
    this.setState("reconnecting");
    this.scheduleReconnect(0);
  }

  private scheduleReconnect(attempt: number): void {
    const backoff = this.backoff as Required<BackoffOptions>;
    if (attempt >= backoff.maxAttempts) {
      this.finish(new PeerError("closed", `gave up reconnecting after ${attempt} attempts`), true);
      return;
    }
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      void this.reconnect(attempt);
    }, backoffDelay(attempt, backoff));
  }

  private async reconnect(attempt: number): Promise<void> {
    if (this.currentState !== "reconnecting") return;
    let restored: Restored;
    try {
      const registered = await this.connect(true);
      const transport = this.transport;
      const resumed = registered.resumed === true;
      const restore: RestoreSteps = {
        send: (type, body) => this.direct(type, body),
        failed: (scope, error, forget) => {
          if (forget) this.memberships.left(scope);
          this.emit("error", error);
        },
        matched: (reply, ticket) => void this.matchResult(reply, ticket),
      };
      const lists = resumed ? await relist(this.memberships, restore) : await rejoin(this.memberships, restore);
      if (this.currentState !== "reconnecting") return;
      if (transport === undefined || this.transport !== transport) throw new PeerError("connection_lost", "the connection dropped while restoring");
      restored = { resumed, missed: resumed ? (registered.missed ?? 0) : 0, lists };
    } catch (error) {
      if (this.currentState !== "reconnecting") return;
      this.emit("error", asPeerError(error, "reconnection failed"));
      this.scheduleReconnect(attempt + 1);
      return;
    }
    this.setState("open");
    this.emit("restored", restored);
    this.flushQueue();
  }

  private startHeartbeat(): void {
    this.stopHeartbeat();
    const every = this.options.heartbeatMs ?? 20_000;
    if (every <= 0) return;
    this.heartbeat = setInterval(() => {
      const transport = this.transport;
      if (transport === undefined || this.currentState !== "open") return;
      transport.request("ping", {}, this.timeoutMs).catch((error: unknown) => {
        // No answer: the connection is dead without having said so (a half-open TCP connection).
        if (error instanceof PeerError && error.code === "timeout" && this.transport === transport) {
          transport.close(new PeerError("connection_lost", "the server stopped answering"));
          this.connectionLost({ code: undefined, reason: "heartbeat timeout", announced: undefined });
        }
      });
    }, every);
  }

  private stopHeartbeat(): void {
    if (this.heartbeat !== undefined) clearInterval(this.heartbeat);
    this.heartbeat = undefined;
  }

  /** Ends the client: no more connections; queued requests fail with `error`, which is also an `error` event when `report`. */
  private finish(error: PeerError, report: boolean): void {
    if (this.currentState === "closed") return;
    this.stopHeartbeat();
    if (this.reconnectTimer !== undefined) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    const transport = this.transport;
    this.transport = undefined;
    transport?.close(error);
    const queued = this.queue;
    this.queue = [];
    for (const request of queued) request.reject(error);
    if (report) this.emit("error", error);
    this.setState("closed");
  }

  // Requests.

  private get timeoutMs(): number {
    return this.options.requestTimeoutMs ?? 10_000;
  }

  /** A request of the application: sent now when registered, queued while (re)connecting. */
  private call(type: RequestType, body: RequestBody): Promise<ServerMessage | undefined> {
    switch (this.currentState) {
      case "open":
        return this.direct(type, body);
      case "connecting":
      case "reconnecting":
        return new Promise((resolve, reject) => this.queue.push({ type, body, resolve, reject }));
      case "idle":
        return Promise.reject(new PeerError("closed", "call register() first", type));
      case "closed":
        return Promise.reject(new PeerError("closed", "the client is closed", type));
    }
  }

  private direct(type: RequestType, body: RequestBody): Promise<ServerMessage | undefined> {
    const transport = this.transport;
    if (transport === undefined) return Promise.reject(new PeerError("connection_lost", "not connected", type));
    return transport.request(type, body, this.timeoutMs);
  }

  private flushQueue(): void {
    const queued = this.queue;
    this.queue = [];
    for (const request of queued) this.direct(request.type, request.body).then(request.resolve, request.reject);
  }

  private matchResult(reply: ServerMessage | undefined, ticket: { groupSize: number; criteria: Criteria | undefined }): MatchResult {
    if (reply?.type === "matched") {
      this.memberships.ticketDone(reply.payload.namespace);
      this.emit("matched", reply);
      return { status: "matched", ...reply.payload };
    }
    const waiting = (reply as ServerMessage<"match">).payload;
    this.memberships.waiting(waiting.namespace, ticket);
    return { status: "waiting", namespace: waiting.namespace };
  }

  /** A message that answers no request: the application's events. */
  private dispatch(message: ServerMessage): void {
    switch (message.type) {
      case "peer_joined":
      case "peer_left":
      case "signal":
      case "relay":
      case "broadcast":
        this.emit(message.type, message as never);
        return;
      case "matched":
        this.memberships.ticketDone(message.payload.namespace);
        this.emit("matched", message);
        return;
      case "kick":
        this.memberships.kicked(message.payload.room_id);
        this.emit("kick", message);
        return;
      case "registered":
        // The server registered this peer again after losing its state (the alias may differ).
        this.registration = { ...this.registration, ...message.payload };
        this.emit("registered", this.registration);
        return;
      case "error":
        this.emit("error", PeerError.fromPayload(message.payload));
        return;
      default:
        return;
    }
  }

  private setState(state: ConnectionState): void {
    if (this.currentState === state) return;
    this.currentState = state;
    this.emit("state", state);
  }
}

export function asPeerError(error: unknown, context: string): PeerError {
  if (error instanceof PeerError) return error;
  return new PeerError("connection_lost", `${context}: ${error instanceof Error ? error.message : String(error)}`);
}
