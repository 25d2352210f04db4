import type { MemorySnapshot } from "../backends/memory/memory-store.ts";
import type { RegistrationRefusal } from "../backends/registration-limiter.ts";
import type { StateStore } from "../backends/state-store.ts";

/**
 * Primary <-> worker messages over Node's cluster IPC (JSON serialization: no bytes, no undefined in
 * an array, no Map or Set; see handOffMessage and callMessage), schema first: each
 * direction is one union tagged on `ps`, which also tells them apart from the Socket.IO cluster
 * adapter's messages on the same channel (those have no `ps`). The receiving process checks each
 * message once, with the guard of its direction (workerToPrimaryGuard, primaryToWorkerGuard), and
 * dispatches it with an exhaustive switch on `ps`.
 *
 * Calls and notices: a call (`hello`, `call`, `limits-register`,
 * `limits-save`, `limits-take` from a worker; `admin-request` from the primary) carries an id unique to its sender, is given up
 * by the sender after a timeout (ReplicatedStore and ClusterLimits `callTimeoutMs`, the primary's
 * admin forwarding), and is answered by exactly one reply with the same id (`snapshot`, `result`,
 * `limits-result`, `admin-response`); a reply whose id is no longer waited for is dropped. Every
 * other message is a notice: no id, no reply.
 */

/** The StateStore methods that change state: they run on the primary, then on every replica. */
export const MUTATIONS = [
  "registerPeer",
  "unregisterPeer",
  "updateMeta",
  "joinNamespace",
  "leaveScope",
  "createRoom",
  "joinRoom",
  "kick",
  "requestMatch",
  "cancelMatch",
  "removeNode",
  "addBan",
  "removeBan",
  "suspendPeer",
  "resumePeer",
  "bufferMessage",
  "expireSuspended",
] as const satisfies readonly (keyof StateStore)[];
export type Mutation = (typeof MUTATIONS)[number];

/** The arguments of each mutation, exactly as its StateStore method takes them. */
export type MutationArgs = { [K in Mutation]: Parameters<StateStore[K]> };
/** What each mutation resolves to. */
export type MutationValue = { [K in Mutation]: Awaited<ReturnType<StateStore[K]>> };

/**
 * One mutation with its arguments, typed by the StateStore signature of its method. Applied by
 * backends/cluster/mutation.ts's exhaustive switch, on the primary's store and on every replica alike.
 */
export type StoreCall<K extends Mutation = Mutation> = { [P in K]: { method: P; args: MutationArgs[P] } }[K];

/**
 * A replica's call of a mutation on the authoritative store; answered by one message with the same
 * id: the mutation's `apply` to the caller's replica when it succeeded, a `result` otherwise.
 */
export type CallMessage<K extends Mutation = Mutation> = { [P in K]: { ps: "call"; id: number; method: P; args: MutationArgs[P] } }[K];
/**
 * A mutation that succeeded on the primary, to replay on a replica in this exact order (a notice).
 * On the replica that called it, it carries the call's `id`: what the replica's own replay returns
 * is the call's answer (the same value the primary's store returned: the replica holds the same
 * state), so a join's member list is never written over the channel.
 */
export type ApplyMessage<K extends Mutation = Mutation> = { [P in K]: { ps: "apply"; method: P; args: MutationArgs[P]; id?: number } }[K];

/** Builds a `call` whose arguments are those of its method. */
export function callMessage<K extends Mutation>(id: number, method: K, args: MutationArgs[K]): CallMessage<K> {
  return { ps: "call", id, method, args: withoutTrailingUndefined(args) };
}

/** Builds an `apply` whose arguments are those of its method. */
export function applyMessage<K extends Mutation>(method: K, args: MutationArgs[K]): ApplyMessage<K> {
  return { ps: "apply", method, args: withoutTrailingUndefined(args) };
}

/**
 * The arguments without the optional ones left out at their end. The channel carries JSON, where
 * an undefined array element becomes null; optional parameters are the last ones (MUTATION_ARGS),
 * so an argument left out is one the array no longer holds, as undefined to the method it reaches.
 */
function withoutTrailingUndefined<T extends readonly unknown[]>(args: T): T {
  let length = args.length;
  while (length > 0 && args[length - 1] === undefined) length--;
  return (length === args.length ? args : args.slice(0, length)) as unknown as T;
}

/** A replica's messages to the primary's StoreHost. */
export type StoreRequest =
  /** Asks for the current state: answered by one `snapshot` with the same id, then every later apply. */
  | { ps: "hello"; id: number }
  | CallMessage
  /** Calls made in one go, in order (see backends/cluster/channel.ts coalescing). */
  | { ps: "batch"; messages: CallMessage[] };

export type StoreResult =
  | { ps: "result"; id: number; ok: true; value: unknown }
  | { ps: "result"; id: number; ok: false; code: number; message: string };

export type StoreReplyItem = { ps: "snapshot"; id: number; state: MemorySnapshot } | ApplyMessage | StoreResult;
/** The StoreHost's messages to a replica: one message, or those of one go in order. */
export type StoreReply = StoreReplyItem | { ps: "batch"; messages: StoreReplyItem[] };

/**
 * Calls to the limits the primary keeps for the whole machine (src/backends/cluster/limits-host.ts), each
 * answered by one `limits-result` with the same id. The calls (and the results) of one go travel
 * as one `limits-batch`, apart from the store's batches.
 */
export type LimitsRequest =
  /**
   * One registration of a public key from a client address (null: none), RegistrationLimits.consume;
   * the value is the limit that refuses it ("address" or "key") or null.
   */
  | { ps: "limits-register"; id: number; key: string; address: string | null }
  /** BudgetStore.save; the value is null. */
  | { ps: "limits-save"; id: number; fingerprint: string; connectionId: string; tokens: number; ttlMs: number }
  /** BudgetStore.take; `from` is null when any kept budget will do; the value is a saved budget or null. */
  | { ps: "limits-take"; id: number; fingerprint: string; from: string | null; waitMs: number };

/** A saved message budget as it crosses the channel (src/backends/budget-store.ts SavedBudget). */
export interface SavedBudgetRecord {
  tokens: number;
  ageMs: number;
  connectionId: string;
}

export type LimitsResult =
  | { ps: "limits-result"; id: number; ok: true; value: RegistrationRefusal | SavedBudgetRecord | null }
  | { ps: "limits-result"; id: number; ok: false; message: string };

export type LimitsCalls = LimitsRequest | { ps: "limits-batch"; messages: LimitsRequest[] };
export type LimitsResults = LimitsResult | { ps: "limits-batch"; messages: LimitsResult[] };

/**
 * A connection the primary's router hands to a worker, sent with the socket handle: the bytes the
 * router read from it, whether it will stay (an upgrade or a new Engine.IO session, counted as a
 * connection), and whether the machine already held `max_peers` connections when it arrived (the
 * worker then refuses it the way the protocol says). A notice: the worker counts it in `load`.
 * `quota`: the client address the primary counted this connection against (max_connections_per_ip);
 * the worker reports its end with `quota-release`. Absent when it was not counted.
 */
export interface HandOff {
  ps: "connection";
  /** The bytes read, in base64 (see handOffBytes). */
  data: string;
  longLived: boolean;
  full: boolean;
  quota?: string;
}

/** Why the primary refused a connection a worker accepted: the HTTP status and reason it is answered with. */
export interface AdmissionRefusal {
  status: number;
  reason: string;
}

/**
 * A worker accepted a new long-lived connection itself (an upgrade or a new Engine.IO session) and
 * asks the primary whether it may stay: the machine's per-address limits and max_peers are counted
 * for the whole machine, and the primary keeps the workers' loads even. `address`: the client
 * address the connection counts against (null: none). Answered by one `admitted` with the same id.
 */
export interface AdmitMessage {
  ps: "admit";
  id: number;
  address: string | null;
}

/**
 * The primary's answer to an `admit`: refused (the worker answers the status and closes), or let in
 * and counted for the worker `to` (the one asking, or a less loaded one the asking worker forwards it
 * to), with whether the machine held max_peers connections before it and the address it was counted
 * against (reported back with `quota-release` when it ends).
 */
export type AdmittedMessage =
  | { ps: "admitted"; id: number; refuse: AdmissionRefusal }
  | { ps: "admitted"; id: number; to: number; full: boolean; quota?: string };

/**
 * A connection a worker accepted that belongs to another worker, sent with the socket handle: an
 * Engine.IO session's request for the worker that owns the session, or a new connection the primary
 * placed there (`admitted`). The primary hands it to worker `to` as a HandOff with the same fields.
 */
export interface ForwardMessage {
  ps: "forward";
  to: number;
  /** The bytes read, in base64 (see handOffBytes). */
  data: string;
  longLived: boolean;
  full: boolean;
  quota?: string;
}

/** Builds a `connection` hand-off; `quota` is there only when the connection was counted against its address. */
export function handOffMessage(bytes: Uint8Array, longLived: boolean, full: boolean, quota: string | undefined): HandOff {
  // The channel carries JSON, which has no bytes: they travel as base64.
  const data = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
  return quota === undefined ? { ps: "connection", data, longLived, full } : { ps: "connection", data, longLived, full, quota };
}

/** The bytes a hand-off or a forward carries. */
export const handOffBytes = (message: HandOff | ForwardMessage): Buffer => Buffer.from(message.data, "base64");

/** Builds the `forward` of a connection to worker `to`: the fields of its hand-off. */
export function forwardMessage(to: number, data: Uint8Array, longLived: boolean, full: boolean, quota: string | undefined): ForwardMessage {
  return { ...handOffMessage(data, longLived, full, quota), ps: "forward", to };
}

/**
 * A request to the admin API (src/admin/admin-api.ts) that the primary's admin listener received,
 * for one worker to answer with the deployment's state: answered by one `admin-response` with the
 * same id. `path` carries the query string; `body` is the request's body as text ("" for none).
 */
export interface AdminRequestMessage {
  ps: "admin-request";
  id: number;
  method: string;
  path: string;
  body: string;
}

/** A worker's answer to an `admin-request`: the HTTP status and the JSON body as text ("" for none). */
export interface AdminResponseMessage {
  ps: "admin-response";
  id: number;
  status: number;
  body: string;
  /** The methods the path takes, with a 405. */
  allow?: string;
}

export type WorkerToPrimary =
  | StoreRequest
  | LimitsCalls
  | AdminResponseMessage
  | AdmitMessage
  | ForwardMessage
  /** The worker's acceptor could not listen on the machine's port (in use, say): the machine cannot serve. */
  | { ps: "cannot-listen"; message: string }
  /**
   * The worker is serving: the router may hand it connections. `port`: the port its own acceptor
   * listens on, when the workers accept connections themselves (the machine's port).
   */
  | { ps: "ready"; nodeId: string; port?: number }
  /**
   * The worker's open connections (raw and Engine.IO, registered or not), reported every second,
   * and how many long-lived hand-offs it has received so far: the primary adds those it sent since
   * to know the machine's exact load.
   */
  | { ps: "load"; connections: number; handOffs: number }
  /**
   * Connections the primary counted per client address (HandOff `quota`) that ended on this worker,
   * one entry per connection, those of one go together.
   */
  | { ps: "quota-release"; addresses: string[] };

/**
 * The messages one process sent another during one turn of the event loop, in order, written as
 * one IPC message (see backends/cluster/channel.ts Bundler): each IPC message costs a system call
 * to write and a wake-up to read, and a turn under load sends several.
 */
export interface Bundle<M> {
  ps: "bundle";
  messages: M[];
}

/** What a worker writes to the primary: a message, or a bundle of them. */
export type FromWorker = WorkerToPrimary | Bundle<WorkerToPrimary>;
/** What the primary writes to a worker: a message, or a bundle of them. */
export type FromPrimary = PrimaryToWorker | Bundle<PrimaryToWorker>;

export type PrimaryToWorker =
  | StoreReply
  | LimitsResults
  /** With Redis: a sibling worker died; remove its peers now rather than when its heartbeat expires. */
  | { ps: "reap"; nodeId: string }
  /** The node ids of the machine's ready workers, sent to every worker whenever they change (direct links fan out to them). */
  | { ps: "workers"; nodeIds: string[] }
  /**
   * The machine is shutting down: stop gracefully within shutdown_timeout. Not a signal, so that a
   * worker that also got SIGTERM from its process group does not take it for a second one.
   */
  | { ps: "stop" }
  | AdminRequestMessage
  | AdmittedMessage
  | HandOff;

/** Told of each message a guard drops: its `ps` and what is wrong with it. */
export type Dropped = (ps: unknown, problem: string) => void;

/**
 * The check of messages from workers, for the primary's edge. True for a well-formed
 * WorkerToPrimary: `ps` is one of its kinds and each field has its primitive type (a store call's
 * arguments too, by the StateStore signature; batches item by item; nested values such as a
 * peer's meta are the sender's). False, silently, for a message without `ps` (the cluster
 * adapter's). False for any other message, reported once to `dropped`. Never throws.
 */
export function workerToPrimaryGuard(dropped: Dropped): (message: unknown) => message is FromWorker {
  return guard<WorkerToPrimary>(WORKER_TO_PRIMARY, dropped);
}

/** The check of messages from the primary, for a worker's edge: as workerToPrimaryGuard, for PrimaryToWorker. */
export function primaryToWorkerGuard(dropped: Dropped): (message: unknown) => message is FromPrimary {
  return guard<PrimaryToWorker>(PRIMARY_TO_WORKER, dropped);
}

/** Marks a switch on `ps` exhaustive: it does not compile while a kind has no case. Does nothing. */
export function exhaustive(_message: never): void {}

// The validators: one check per kind, built once; each answers what is wrong, or undefined.
// Problems are constant strings, so a well-formed message costs a few typeof and no allocation.

type Fields = Record<string, unknown>;
type Check = (message: Fields) => string | undefined;

const isObject = (value: unknown): value is Fields => typeof value === "object" && value !== null;

/** A bundle of one side's messages; a bundle in a bundle is refused (`items` knows no such kind). */
function guard<T>(kinds: ReadonlyMap<string, Check>, dropped: Dropped): (message: unknown) => message is T | Bundle<T> {
  const checkBundle: Check = (message) => items(message.messages, kinds);
  return (message: unknown): message is T | Bundle<T> => {
    if (!isObject(message) || !("ps" in message)) return false;
    const check = message.ps === "bundle" ? checkBundle : typeof message.ps === "string" ? kinds.get(message.ps) : undefined;
    const problem = check === undefined ? "unknown kind" : check(message);
    if (problem === undefined) return true;
    dropped(message.ps, problem);
    return false;
  };
}

/** The kinds of one union, each with its check: the mapped type makes a new kind fail to compile without one. */
const table = <T extends { ps: string }>(checks: { [K in T["ps"]]: Check }): ReadonlyMap<string, Check> =>
  new Map<string, Check>(Object.entries(checks));

/** Checks an array whose items are all of `kinds`. */
function items(value: unknown, kinds: ReadonlyMap<string, Check>): string | undefined {
  if (!Array.isArray(value)) return "messages is not an array";
  for (const item of value as unknown[]) {
    if (!isObject(item) || typeof item.ps !== "string") return "an item has no kind";
    const check = kinds.get(item.ps);
    if (check === undefined) return "an item's kind does not belong in this batch";
    const problem = check(item);
    if (problem !== undefined) return problem;
  }
  return undefined;
}

type BaseTypeName<T> = T extends string ? "string" : T extends number ? "number" : T extends boolean ? "boolean" : "object";
/** An optional parameter's name ends in "?": its argument may be undefined (left out at the end of the arguments). */
type TypeName<T> = undefined extends T ? `${BaseTypeName<Exclude<T, undefined>>}?` : BaseTypeName<T>;
type ArgTypes<T> = { readonly [I in keyof T]-?: TypeName<T[I]> };

/**
 * The `typeof` of each argument of each mutation. Typed from the StateStore signatures, so a new
 * mutation, or a changed parameter, does not compile until this table agrees.
 */
const MUTATION_ARGS: { readonly [K in Mutation]: ArgTypes<MutationArgs[K]> } = {
  registerPeer: ["object"],
  unregisterPeer: ["string", "string"],
  updateMeta: ["string", "object"],
  joinNamespace: ["string", "string", "object"],
  leaveScope: ["string", "string"],
  createRoom: ["string", "string", "number", "object?"],
  joinRoom: ["string", "string", "number", "object?"],
  kick: ["string", "string", "string", "object?"],
  requestMatch: ["object"],
  cancelMatch: ["string", "string"],
  removeNode: ["string"],
  addBan: ["object", "number"],
  removeBan: ["string", "number"],
  suspendPeer: ["string", "string", "number"],
  resumePeer: ["object"],
  bufferMessage: ["object", "string", "number"],
  expireSuspended: ["number"],
};
const ARG_TYPES = new Map<string, readonly string[]>(Object.entries(MUTATION_ARGS));

/** The method and arguments of a call or an apply. */
function checkMutation(message: Fields): string | undefined {
  const types = typeof message.method === "string" ? ARG_TYPES.get(message.method) : undefined;
  if (types === undefined) return "method is not a mutation";
  const args = message.args;
  if (!Array.isArray(args) || args.length > types.length) return "args do not match the method";
  for (let i = 0; i < types.length; i++) {
    const arg: unknown = args[i];
    let type = types[i] as string;
    if (type.endsWith("?")) {
      if (arg === undefined) continue;
      type = type.slice(0, -1);
    }
    if (type === "object" ? !isObject(arg) : typeof arg !== type) return "args do not match the method";
  }
  return undefined;
}

const hasId = (message: Fields): string | undefined => (typeof message.id === "number" ? undefined : "id is not a number");

const checkCall: Check = (message) => hasId(message) ?? checkMutation(message);

const checkStoreResult: Check = (message) => {
  if (typeof message.id !== "number") return "id is not a number";
  if (message.ok === true) return undefined;
  if (message.ok !== false) return "ok is not a boolean";
  return typeof message.code === "number" && typeof message.message === "string" ? undefined : "a failure needs a code and a message";
};

const checkSnapshot: Check = (message) => {
  if (typeof message.id !== "number") return "id is not a number";
  const state = message.state;
  return isObject(state) &&
    Array.isArray(state.peers) &&
    Array.isArray(state.scopes) &&
    Array.isArray(state.queues) &&
    typeof state.joinSeq === "number" &&
    Array.isArray(state.bans)
    ? undefined
    : "state is not a snapshot";
};

const limitsRequestChecks: { [K in LimitsRequest["ps"]]: Check } = {
  "limits-register": (message) =>
    hasId(message) ??
    (typeof message.key === "string" && (message.address === null || typeof message.address === "string") ? undefined : "a registration needs a key and an address or null"),
  "limits-save": (message) =>
    hasId(message) ??
    (typeof message.fingerprint === "string" &&
    typeof message.connectionId === "string" &&
    typeof message.tokens === "number" &&
    typeof message.ttlMs === "number"
      ? undefined
      : "a save needs fingerprint, connectionId, tokens and ttlMs"),
  "limits-take": (message) =>
    hasId(message) ??
    (typeof message.fingerprint === "string" && (message.from === null || typeof message.from === "string") && typeof message.waitMs === "number"
      ? undefined
      : "a take needs fingerprint, from and waitMs"),
};
const LIMITS_REQUESTS = table<LimitsRequest>(limitsRequestChecks);

const checkLimitsResult: Check = (message) => {
  if (typeof message.id !== "number") return "id is not a number";
  if (message.ok === false) return typeof message.message === "string" ? undefined : "a failure needs a message";
  if (message.ok !== true) return "ok is not a boolean";
  const value = message.value;
  if (value === null || value === "address" || value === "key") return undefined;
  return isObject(value) && typeof value.tokens === "number" && typeof value.ageMs === "number" && typeof value.connectionId === "string"
    ? undefined
    : "value is not a refusal, a saved budget or null";
};
/** The fields a HandOff and a ForwardMessage share. */
const checkHandOffFields: Check = (message) =>
  typeof message.data === "string" &&
  typeof message.longLived === "boolean" &&
  typeof message.full === "boolean" &&
  (message.quota === undefined || typeof message.quota === "string")
    ? undefined
    : "a hand-off needs data, longLived and full";

const LIMITS_RESULTS = table<LimitsResult>({ "limits-result": checkLimitsResult });

const CALLS = table<CallMessage>({ call: checkCall });
const checkApply: Check = (message) => (message.id === undefined || typeof message.id === "number" ? checkMutation(message) : "id is not a number");
const STORE_REPLY_ITEMS = table<StoreReplyItem>({ snapshot: checkSnapshot, apply: checkApply, result: checkStoreResult });

const WORKER_TO_PRIMARY = table<WorkerToPrimary>({
  hello: hasId,
  call: checkCall,
  batch: (message) => items(message.messages, CALLS),
  ...limitsRequestChecks,
  "limits-batch": (message) => items(message.messages, LIMITS_REQUESTS),
  ready: (message) =>
    typeof message.nodeId === "string" && (message.port === undefined || typeof message.port === "number") ? undefined : "nodeId is not a string",
  "cannot-listen": (message) => (typeof message.message === "string" ? undefined : "message is not a string"),
  admit: (message) => hasId(message) ?? (message.address === null || typeof message.address === "string" ? undefined : "address is not a string or null"),
  forward: (message) =>
    typeof message.to === "number" && checkHandOffFields(message) === undefined ? undefined : "a forward needs to, data, longLived and full",
  load: (message) =>
    typeof message.connections === "number" && typeof message.handOffs === "number" ? undefined : "connections and handOffs are not numbers",
  "quota-release": (message) =>
    Array.isArray(message.addresses) && (message.addresses as unknown[]).every((address) => typeof address === "string") ? undefined : "addresses are not strings",
  "admin-response": (message) =>
    hasId(message) ??
    (typeof message.status === "number" && typeof message.body === "string" && (message.allow === undefined || typeof message.allow === "string")
      ? undefined
      : "an admin response needs a status and a body"),
});

const PRIMARY_TO_WORKER = table<PrimaryToWorker>({
  snapshot: checkSnapshot,
  apply: checkApply,
  result: checkStoreResult,
  batch: (message) => items(message.messages, STORE_REPLY_ITEMS),
  "limits-result": checkLimitsResult,
  "limits-batch": (message) => items(message.messages, LIMITS_RESULTS),
  reap: (message) => (typeof message.nodeId === "string" ? undefined : "nodeId is not a string"),
  workers: (message) =>
    Array.isArray(message.nodeIds) && (message.nodeIds as unknown[]).every((nodeId) => typeof nodeId === "string") ? undefined : "nodeIds are not strings",
  stop: () => undefined,
  "admin-request": (message) =>
    hasId(message) ??
    (typeof message.method === "string" && typeof message.path === "string" && typeof message.body === "string"
      ? undefined
      : "an admin request needs a method, a path and a body"),
  connection: checkHandOffFields,
  admitted: (message) => {
    const wrong = hasId(message);
    if (wrong !== undefined) return wrong;
    const refuse = message.refuse;
    if (refuse !== undefined) return isObject(refuse) && typeof refuse.status === "number" && typeof refuse.reason === "string" ? undefined : "refuse needs a status and a reason";
    return typeof message.to === "number" && typeof message.full === "boolean" && (message.quota === undefined || typeof message.quota === "string")
      ? undefined
      : "an admission needs to and full";
  },
});
