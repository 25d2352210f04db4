import { randomBytes } from "node:crypto";
import { Cluster } from "ioredis";
import { closeRedis, openRedis, type RedisClient, type RedisEndpoint } from "./redis-connections.ts";
import { ErrorCode, ProtocolError } from "../../protocol/errors.ts";
import { canonicalCriteria, mergeMeta, type Meta } from "../../protocol/requests.ts";
import { SCRIPTS, type ScriptName } from "./redis-scripts.ts";
import {
  identityKind,
  type Ban,
  type Departure,
  type JoinOptions,
  type JoinResult,
  type KickBan,
  type MatchOutcome,
  type MatchTicket,
  type MemberInfo,
  type MemberPage,
  type PeerCaps,
  type PeerDetails,
  type PeerRecord,
  type PeerScope,
  type Registration,
  type RegisterPeer,
  type ResumedPeer,
  type ResumedScope,
  type ResumePeer,
  type RoomAdmission,
  type RoomInfo,
  type RoomJoinResult,
  type StateStore,
  type StoreStats,
} from "../state-store.ts";

export interface RedisStoreOptions {
  /** One Redis server: `redis://[user:password@]host:port[/db]` (a shorthand for `endpoint`). */
  url?: string;
  /** Where Redis is, in any mode; wins over `url`. */
  endpoint?: RedisEndpoint;
  /**
   * Prepended to every key, so several deployments (or test runs) can share one Redis. It must
   * hold a hash tag (`{...}`, not empty): every key of the store is then in the one cluster slot
   * of that tag, so each script is atomic on a Redis Cluster too (see redis-scripts.ts).
   * Default `{ps}:`.
   */
  keyPrefix?: string;
  /** How long one call may wait for Redis before failing with 503. Default 1000 ms. */
  commandTimeoutMs?: number;
  /** How long a connection attempt may take. Default 2000 ms. */
  connectTimeoutMs?: number;
  /** Upper bound of the delay between reconnection attempts (they start at 100 ms and grow). Default 1000 ms. */
  maxReconnectDelayMs?: number;
}

export type RedisStatus = "ready" | "down";

export interface RedisStatusDetails {
  /**
   * On "ready": true when Redis may have lost some of this store's state since the last "ready":
   * it restarted (empty, or from a snapshot), was flushed, or is another server (a replica that
   * Sentinel promoted, which may lack the master's last writes). The node must then see that each
   * of its live peers is still registered and in its scopes, and register it again where not.
   */
  stateLost: boolean;
}

export type RedisStatusListener = (status: RedisStatus, details: RedisStatusDetails) => void;

type ScriptCall = (...args: (string | number)[]) => Promise<unknown>;
type ScriptedRedis = RedisClient & Record<ScriptName, ScriptCall>;

/** Member entry as the scripts return it: fingerprint, alias, app_type, meta JSON, verified (1 or 0). */
type RawMember = [string, string, string, string, number];
/** [added, member, total, members, seq] */
type RawJoin = [number, RawMember, number, RawMember[], number];

/** Attempts of an optimistic meta update before giving up (only the peer's own connection writes its meta). */
const META_ATTEMPTS = 16;
/** Peers removed per script run by removeNode, so a big node does not block Redis in one go. */
const REMOVE_NODE_BATCH = 200;
/** Expired suspensions removed per script run by expireSuspended, for the same reason. */
const EXPIRE_BATCH = 200;

/** The default key prefix; its hash tag puts the whole state in one cluster slot. */
export const DEFAULT_KEY_PREFIX = "{ps}:";

/** Replies that mean "Redis cannot serve right now", as opposed to a bug in a script. */
const UNAVAILABLE_REPLY = /^(LOADING|BUSY|MASTERDOWN|READONLY|OOM|TRYAGAIN|NOREPLICAS|MISCONF)\b/;
const REFUSAL = /^PS(\d{3}) ([\s\S]*)$/;

/**
 * The deployment-wide state in one Redis, shared by every node. Each mutation is one Lua script
 * (see redis-scripts.ts), so it is atomic across nodes and a refusal changes nothing.
 *
 * Outages fail fast: no offline queue, no retries and a command timeout, so a call made while
 * Redis is unreachable rejects with ProtocolError 503 at once (or after `commandTimeoutMs` when
 * Redis stops answering). The client reconnects by itself; `onStatusChange` reports "down" and
 * "ready", the latter with `stateLost` when Redis may have come back without some of the state.
 */
export class RedisStore implements StateStore {
  private readonly redis: ScriptedRedis;
  private readonly prefix: string;
  private readonly listeners = new Set<RedisStatusListener>();
  private ready = false;
  private closed = false;
  /** The Redis lifetime this store has seen (see the `epoch` key); undefined before the first "ready". */
  private epoch: string | undefined;
  /** The run id of the server the last "ready" found (see serverRunId); undefined before the first. */
  private runId: string | undefined;
  /** While a Cluster's state slot is unreachable: the next look at whether it is back (see watchCluster). */
  private probe: NodeJS.Timeout | undefined;
  private checking = false;
  private readonly maxDelay: number;

  constructor(options: RedisStoreOptions) {
    this.prefix = options.keyPrefix ?? DEFAULT_KEY_PREFIX;
    if (!hasHashTag(this.prefix)) throw new Error(`RedisStore keyPrefix "${this.prefix}" has no hash tag: write it like {ps}:`);
    const maxDelay = (this.maxDelay = options.maxReconnectDelayMs ?? 1_000);
    const endpoint: RedisEndpoint = options.endpoint ?? { mode: "single", url: options.url ?? "redis://localhost:6379" };
    const redis = openRedis(endpoint, {
      // Fail fast while down: a call either reaches Redis now or rejects with 503.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      // A script in flight when the connection broke may or may not have run; never run it twice.
      autoResendUnfulfilledCommands: false,
      commandTimeout: options.commandTimeoutMs ?? 1_000,
      connectTimeout: options.connectTimeoutMs ?? 2_000,
      retryStrategy: (attempt) => Math.min(attempt * 100, maxDelay),
      lazyConnect: false,
    });
    // KEYS[1] is the prefix: the key that routes each script to the state's slot.
    for (const [name, lua] of Object.entries(SCRIPTS)) redis.defineCommand(name, { lua, numberOfKeys: 1 });
    this.redis = redis as ScriptedRedis;
    if (redis instanceof Cluster) this.watchCluster(redis);
    else redis.on("ready", () => void this.becameReady());
    // One Redis: the connection is lost. A Cluster: the connections to every node are.
    redis.on("close", () => this.becameDown());
    // Connection errors are reported through the calls that fail and the "down" status.
    redis.on("error", () => undefined);
  }

  /** Resolves once the store can serve calls; rejects after `timeoutMs` (default 5000). */
  whenReady(timeoutMs = 5_000): Promise<void> {
    if (this.ready) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        unsubscribe();
        reject(new ProtocolError(ErrorCode.Unavailable, "Redis is not reachable"));
      }, timeoutMs);
      const unsubscribe = this.onStatusChange((status) => {
        if (status !== "ready") return;
        clearTimeout(timer);
        unsubscribe();
        resolve();
      });
    });
  }

  /** True while connected to Redis (calls are expected to succeed). */
  isReady(): boolean {
    return this.ready;
  }

  /** Tells `listener` each time Redis becomes unreachable or reachable again; returns an unsubscribe function. */
  onStatusChange(listener: RedisStatusListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async registerPeer(request: RegisterPeer): Promise<Registration> {
    const [alias, replacedConnection, scopes] = (await this.run(
      "psRegister",
      request.fingerprint,
      request.connectionId,
      request.nodeId,
      identityKind(request.fingerprint),
      request.alias === undefined ? "0" : "1",
      request.alias ?? "",
      JSON.stringify(request.meta),
      request.verified ? "1" : "0",
      request.resumeHash ?? "",
      ...request.aliasCandidates,
    )) as [string, string, string[]];
    if (replacedConnection === "") return { alias };
    return { alias, replaced: { fingerprint: request.fingerprint, scopes, connectionId: replacedConnection } };
  }

  async unregisterPeer(fingerprint: string, connectionId: string): Promise<Departure | undefined> {
    const scopes = (await this.run("psUnregister", fingerprint, connectionId)) as string[] | null;
    return scopes === null ? undefined : { fingerprint, scopes };
  }

  async resolvePeer(to: string): Promise<PeerRecord | undefined> {
    const found = (await this.run("psResolve", to)) as RawRecord | null;
    return found === null ? undefined : peerRecord(found);
  }

  async peerDetails(fingerprint: string): Promise<PeerDetails | undefined> {
    const found = (await this.run("psPeer", fingerprint)) as [string, string, string, string, (string | number)[], string] | null;
    if (found === null) return undefined;
    const [alias, connectionId, nodeId, meta, flat, verified] = found;
    const scopes: PeerScope[] = [];
    for (let index = 0; index + 2 < flat.length; index += 3) {
      scopes.push({ name: String(flat[index]), room: Number(flat[index + 1]) === 1, app_type: String(flat[index + 2]) });
    }
    scopes.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return { fingerprint, alias, connectionId, nodeId, meta: JSON.parse(meta) as Meta, verified: verified === "1", scopes };
  }

  async resolveTarget(from: string, to: string): Promise<PeerRecord> {
    return peerRecord((await this.run("psRoute", from, to)) as RawRecord);
  }

  async suspendPeer(fingerprint: string, connectionId: string, until: number): Promise<boolean> {
    return (await this.run("psSuspend", fingerprint, connectionId, until)) === 1;
  }

  async resumePeer(request: ResumePeer): Promise<ResumedPeer | undefined> {
    const reply = (await this.run(
      "psResume",
      request.fingerprint,
      request.resumeHash,
      request.connectionId,
      request.nodeId,
      request.verified ? "1" : "0",
      request.now,
    )) as [string, string, string, number, string[], string[]] | null;
    if (reply === null) return undefined;
    const [alias, meta, replaced, missed, messages, flat] = reply;
    const scopes: ResumedScope[] = [];
    for (let index = 0; index + 2 < flat.length; index += 3) {
      const max = flat[index + 2] as string;
      scopes.push({ name: flat[index] as string, appType: flat[index + 1] as string, roomSize: max === "" ? undefined : Number(max) });
    }
    const resumed: ResumedPeer = { alias, meta: JSON.parse(meta) as Meta, scopes, messages, missed: Number(missed) };
    if (replaced !== "") resumed.replaced = replaced;
    return resumed;
  }

  async bufferMessage(targets: readonly string[], message: string, limit: number): Promise<string[]> {
    if (targets.length === 0) return [];
    return (await this.run("psBuffer", limit, message, ...targets)) as string[];
  }

  async expireSuspended(now: number): Promise<Departure[]> {
    const departures: Departure[] = [];
    for (;;) {
      const removed = (await this.run("psExpire", now, EXPIRE_BATCH)) as [string, string[]][];
      for (const [fingerprint, scopes] of removed) departures.push({ fingerprint, scopes });
      if (removed.length < EXPIRE_BATCH) return departures;
    }
  }

  async updateMeta(fingerprint: string, patch: Meta): Promise<void> {
    // Merged here, not in Lua, so key order and the 4 KB measure are exactly JSON.stringify's;
    // written back only if nobody changed the meta meanwhile.
    for (let attempt = 0; attempt < META_ATTEMPTS; attempt++) {
      const current = await this.currentMeta(fingerprint);
      const next = JSON.stringify(mergeMeta(JSON.parse(current) as Meta, patch));
      if ((await this.run("psSetMeta", fingerprint, current, next)) === 1) return;
    }
    throw new ProtocolError(ErrorCode.Unavailable, "meta kept changing; try again");
  }

  async joinNamespace(name: string, fingerprint: string, options: JoinOptions): Promise<JoinResult> {
    for (let attempt = 0; attempt < META_ATTEMPTS; attempt++) {
      let expected = "";
      let next = "";
      if (options.meta !== undefined) {
        expected = await this.currentMeta(fingerprint);
        next = JSON.stringify(mergeMeta(JSON.parse(expected) as Meta, options.meta));
      }
      const reply = (await this.run(
        "psJoinNamespace",
        name,
        fingerprint,
        options.appType,
        options.listLimit,
        options.meta === undefined ? "0" : "1",
        expected,
        next,
        capArg(options.caps?.maxScopes),
      )) as RawJoin | 0;
      if (reply !== 0) return joinResult(reply);
    }
    throw new ProtocolError(ErrorCode.Unavailable, "meta kept changing; try again");
  }

  async leaveScope(name: string, fingerprint: string): Promise<void> {
    await this.run("psLeave", name, fingerprint);
  }

  async listMembers(name: string, requester: string | null, limit: number, offset = 0): Promise<MemberPage> {
    const [total, members] = (await this.run("psList", name, requester ?? "", limit, offset, requester === null ? "1" : "0")) as [number, RawMember[]];
    return { peers: members.map(memberInfo), total };
  }

  async isMember(name: string, fingerprint: string): Promise<boolean> {
    return (await this.guard(this.redis.zscore(this.key("scope", name), fingerprint))) !== null;
  }

  async scopeExists(name: string): Promise<boolean> {
    return (await this.guard(this.redis.exists(this.key("scope", name)))) === 1;
  }

  async sharesScope(a: string, b: string): Promise<boolean> {
    return (await this.run("psShares", a, b)) === 1;
  }

  async createRoom(roomId: string, owner: string, maxSize: number, caps?: PeerCaps): Promise<RoomInfo> {
    const raw = await this.run("psCreateRoom", roomId, owner, maxSize, capArg(caps?.maxScopes), capArg(caps?.maxRooms));
    return roomInfo(roomId, raw as RawRoom);
  }

  async joinRoom(roomId: string, fingerprint: string, listLimit: number, admission?: RoomAdmission): Promise<RoomJoinResult> {
    const now = admission === undefined ? "" : admission.now;
    const raw = (await this.run("psJoinRoom", roomId, fingerprint, listLimit, now, capArg(admission?.caps?.maxScopes))) as [...RawJoin, number];
    return { ...joinResult(raw.slice(0, 5) as RawJoin), maxSize: raw[5] };
  }

  async roomInfo(roomId: string): Promise<RoomInfo> {
    return roomInfo(roomId, (await this.run("psRoomInfo", roomId)) as RawRoom);
  }

  async kick(roomId: string, owner: string, target: string, ban?: KickBan): Promise<void> {
    await this.run("psKick", roomId, owner, target, ban?.now ?? "", ban?.until ?? "");
  }

  async requestMatch(ticket: MatchTicket): Promise<MatchOutcome> {
    const open = ticket.open === true;
    // The scripts tell an open queue by this suffix (see redis-scripts.ts).
    const queueId = `${ticket.namespace}\u0000${ticket.groupSize}\u0000${canonicalCriteria(ticket.criteria)}${open ? "\u0000open" : ""}`;
    const reply = (await this.run(
      "psMatch",
      ticket.namespace,
      ticket.fingerprint,
      ticket.groupSize,
      queueId,
      ticket.sessionId,
      open ? "1" : "0",
      ticket.groupRoom === undefined ? "0" : "1",
      ticket.groupRoom ?? "",
      capArg(ticket.caps?.maxTickets),
      ...(ticket.avoid ?? []),
    )) as ["waiting"] | ["matched", string, RawMember[]];
    if (reply[0] === "waiting") return { status: "waiting" };
    return { status: "matched", sessionId: reply[1], peers: reply[2].map(memberInfo) };
  }

  async cancelMatch(namespace: string, fingerprint: string): Promise<boolean> {
    return (await this.run("psCancelMatch", namespace, fingerprint)) === 1;
  }

  async removeNode(nodeId: string): Promise<Departure[]> {
    const departures: Departure[] = [];
    for (;;) {
      const [remaining, removed] = (await this.run("psRemoveNode", nodeId, REMOVE_NODE_BATCH)) as [number, [string, string[]][]];
      for (const [fingerprint, scopes] of removed) departures.push({ fingerprint, scopes });
      if (remaining === 0) return departures;
    }
  }

  async addBan(ban: Ban, now: number): Promise<void> {
    await this.run("psAddBan", ban.id, JSON.stringify(ban), ban.expiresAt, now);
  }

  async listBans(now: number): Promise<Ban[]> {
    const bans = ((await this.run("psListBans", now)) as string[]).map((text) => JSON.parse(text) as Ban);
    return bans.sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  async removeBan(id: string, now: number): Promise<boolean> {
    return (await this.run("psRemoveBan", id, now)) === 1;
  }

  async stats(): Promise<StoreStats> {
    const [totalPeers, namespaces, kinds] = (await this.run("psStats")) as [number, (string | number)[], string[]];
    return { totalPeers, namespaces: counts(namespaces), peersByKind: counts(kinds) };
  }

  /** Disconnects from Redis. The shared state stays: a node's peers are removed by unregisterPeer or removeNode. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.probe);
    this.listeners.clear();
    await closeRedis(this.redis, true);
    this.ready = false;
  }

  private key(kind: string, id: string): string {
    return `${this.prefix}${kind}:${id}`;
  }

  private async currentMeta(fingerprint: string): Promise<string> {
    const meta = await this.guard(this.redis.hget(this.key("peer", fingerprint), "meta"));
    if (meta === null) throw new ProtocolError(ErrorCode.NotFound, "peer is not registered");
    return meta;
  }

  private run(script: ScriptName, ...args: (string | number)[]): Promise<unknown> {
    return this.guard(this.redis[script](this.prefix, ...args));
  }

  /** Turns a script's refusal into its ProtocolError, and any failure to reach Redis into 503. */
  private async guard<T>(call: Promise<T>): Promise<T> {
    try {
      return await call;
    } catch (error) {
      throw translate(error);
    }
  }

  /**
   * A Cluster is "ready" while one master is gone, and the one gone may hold the state's slot: on
   * "ready", and when any node's connection ends, the state is read again, and a failure means
   * down. While down, the store looks every `maxReconnectDelayMs` whether the slot is served
   * again (the Cluster reconnects to a node only when a command or its slot refresh leads there).
   */
  private watchCluster(cluster: Cluster): void {
    cluster.on("ready", () => void this.recheck());
    cluster.on("-node", () => {
      if (this.ready) void this.recheck();
    });
  }

  /** Reads the epoch (Cluster only): ready if it answers (reporting a lost state), else down and probing. */
  private async recheck(): Promise<void> {
    if (this.checking || this.closed) return;
    this.checking = true;
    try {
      if (!(await this.becameReady())) {
        this.becameDown();
        this.probeLater();
      }
    } finally {
      this.checking = false;
    }
  }

  private probeLater(): void {
    if (this.probe !== undefined || this.closed || this.ready) return;
    this.probe = setTimeout(() => {
      this.probe = undefined;
      void this.recheck();
    }, this.maxDelay);
    this.probe.unref();
  }

  /** Reads the epoch; resolves false when Redis did not answer. Says "ready" unless it was ready with the same state. */
  private async becameReady(): Promise<boolean> {
    let epoch: string;
    let runId: string;
    try {
      // A fresh token each time: finding none and writing a new one means Redis was wiped.
      [epoch, runId] = await Promise.all([this.redis.psEpoch(this.prefix, randomBytes(16).toString("hex")) as Promise<string>, this.serverRunId()]);
    } catch {
      // The connection broke again right away; "close" follows and a later "ready" retries.
      return false;
    }
    if (this.closed || this.redis.status !== "ready") return false;
    const stateLost = (this.epoch !== undefined && this.epoch !== epoch) || (this.runId !== undefined && this.runId !== runId);
    this.epoch = epoch;
    this.runId = runId;
    if (this.ready && !stateLost) return true;
    this.ready = true;
    this.emit("ready", { stateLost });
    return true;
  }

  /**
   * The run id of the server holding the state (one server, the master Sentinel named, or on a
   * Cluster the master of the state's slot: asked in a script, which runs there). Another one
   * than before is another server process: a replica promoted by a failover, or a restart. Either
   * may lack writes the one before acknowledged (replication is asynchronous; a restart keeps at
   * most its last snapshot), which the epoch cannot tell, since it is copied with everything
   * else: the node must then see that its peers are all there.
   */
  private async serverRunId(): Promise<string> {
    return (await this.redis.psRunId(this.prefix)) as string;
  }

  private becameDown(): void {
    if (!this.ready) return;
    this.ready = false;
    this.emit("down", { stateLost: false });
  }

  private emit(status: RedisStatus, details: RedisStatusDetails): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(status, details);
      } catch (error) {
        console.error("RedisStore status listener failed", error);
      }
    }
  }
}

/** Whether `prefix` holds a non-empty hash tag, the part of a key Redis Cluster hashes when present. */
function hasHashTag(prefix: string): boolean {
  const open = prefix.indexOf("{");
  return open >= 0 && prefix.indexOf("}", open + 1) > open + 1;
}

/** A cap as a script argument: "" when it is not checked. */
const capArg = (cap: number | undefined): string | number => cap ?? "";

/** [peerCount, maxSize, owner] */
type RawRoom = [number, string | number, string];
/** [fingerprint, alias, conn, node, suspended (1|0)] */
type RawRecord = [string, string, string, string, number];

function peerRecord([fingerprint, alias, connectionId, nodeId, suspended]: RawRecord): PeerRecord {
  const record: PeerRecord = { fingerprint, alias, connectionId, nodeId };
  if (suspended === 1) record.suspended = true;
  return record;
}

/** A flat [name, count, name, count, ...] reply as a record. */
function counts(flat: readonly (string | number)[]): Record<string, number> {
  const entries: [string, number][] = [];
  for (let index = 0; index + 1 < flat.length; index += 2) entries.push([String(flat[index]), Number(flat[index + 1])]);
  // fromEntries defines each key: a name such as "__proto__" is listed like any other.
  return Object.fromEntries(entries);
}

function roomInfo(roomId: string, [peerCount, maxSize, owner]: RawRoom): RoomInfo {
  return { room_id: roomId, peer_count: peerCount, max_size: Number(maxSize), owner };
}

function memberInfo([fingerprint, alias, appType, meta, verified]: RawMember): MemberInfo {
  return { fingerprint, alias, app_type: appType, meta: JSON.parse(meta) as Meta, verified: verified === 1 };
}

function joinResult([added, member, total, members, seq]: RawJoin): JoinResult {
  return { added: added === 1, member: memberInfo(member), peers: members.map(memberInfo), total, seq };
}

function translate(error: unknown): unknown {
  if (!(error instanceof Error)) return error;
  const refusal = REFUSAL.exec(error.message);
  if (refusal !== null) return new ProtocolError(Number(refusal[1]) as ErrorCode, refusal[2] ?? "");
  // Any other reply error is a script bug: let it surface as one (500), not as an outage.
  if (error.name === "ReplyError" && !UNAVAILABLE_REPLY.test(error.message)) return error;
  // Not connected, connection lost mid-call, or no answer within the command timeout.
  return new ProtocolError(ErrorCode.Unavailable, `state backend unavailable: ${error.message}`);
}
