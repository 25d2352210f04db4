import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import type { Socket as TcpSocket } from "node:net";
import { dirname, join } from "node:path";
import { Writable, type Duplex } from "node:stream";
import { fileURLToPath } from "node:url";
import { transports, type Transport } from "engine.io";
import { Server, Socket, type Namespace } from "socket.io";
import { Adapter, MessageType } from "socket.io-adapter";

/**
 * Every private member of another library that this server relies on, and the start-up check that
 * they are still there.
 *
 * Each accessor names the member, the library version it was verified against, why no public API
 * does the job, and what breaks without it. The rest of the code reaches these members only
 * through this file. {@link assertLibraryInternals} runs before anything is wired (createServer,
 * and the cluster primary before it forks): it refuses to start when an installed copy is not the
 * exact version pinned in package.json and verified here, or when a member it can see without a
 * connection is gone. Members that exist only on live objects are checked through their class
 * source, or on first use.
 *
 * To move to a new version of one of these libraries: re-verify each accessor that names it,
 * then update {@link VERIFIED_VERSIONS} and the pin in package.json together.
 */

/** The exact versions the accessors below were verified against; package.json must pin these. */
export const VERIFIED_VERSIONS = {
  "socket.io": "4.8.3",
  "socket.io-adapter": "2.5.8",
  "engine.io": "6.6.12",
  // No private member: the server writes Socket.IO EVENT packets itself (`2["type",{...}]`, see
  // transport/socketio.ts) and reads the adapter's encoded broadcasts (protocol/envelope.ts), in the
  // exact text this version's Encoder produces.
  "socket.io-parser": "4.2.7",
  "@socket.io/cluster-adapter": "0.3.0",
  // The copy the raw WebSocket endpoints use (engine.io has its own): see quietRepeatedReceiverEnds.
  ws: "8.18.3",
} as const;

export type CheckedPackage = keyof typeof VERIFIED_VERSIONS;

// ---------------------------------------------------------------------------------------------
// socket.io-adapter 2.5.8: Adapter#apply and Adapter#_encode (both `private` in its typings)
// ---------------------------------------------------------------------------------------------

/** socket.io-adapter's BroadcastOptions, with the flags as the adapters carry them: whole, own ones included. */
export interface DeliveryOptions {
  readonly rooms: Set<string>;
  readonly except?: Set<string>;
  readonly flags?: Readonly<Record<string, unknown>>;
}

/** One local recipient as the adapter hands it over: a Socket.IO socket or a registered AdapterPeer. */
export interface AdapterRecipient {
  readonly id: string;
}

/** The adapter's own choice of local recipients; call it once, synchronously. */
export type SelectRecipients = (options: DeliveryOptions, each: (recipient: AdapterRecipient) => void) => void;

/**
 * Called once per broadcast delivered on this process, with the broadcast's options, the write to
 * one recipient (`deliver`), and the adapter's own selection (`select`). Doing
 * `select(options, deliver)` is what the adapter would have done.
 */
export type DeliveryHook = (options: DeliveryOptions, deliver: (recipient: AdapterRecipient) => void, select: SelectRecipients) => void;

interface AdapterInternals {
  apply(options: DeliveryOptions, callback: (recipient: AdapterRecipient) => void): void;
  _encode(packet: unknown, packetOptions: unknown): unknown;
}

/**
 * Routes every broadcast this adapter delivers on this process through `hook`; the adapter's other
 * uses of its selection (fetchSockets, socketsJoin/Leave, disconnectSockets) run untouched.
 *
 * Internal: socket.io-adapter 2.5.8 `Adapter#apply(options, callback)` (picks the local sockets of
 * a selection) and `Adapter#_encode(packet, packetOptions)` (encodes a broadcast once), replaced on
 * this adapter instance. `Adapter#broadcast` calls `_encode`, then `apply`, synchronously: a flag
 * set by the first tells the second that this selection is a delivery.
 *
 * Why no public API: the cluster and Redis adapters deliver broadcasts that arrive from other
 * processes by calling the in-memory `broadcast` through `super`, which bypasses anything set on
 * the instance's public `broadcast`; `apply` is the one place every adapter, for local and remote
 * emits alike, picks the recipients on this process.
 *
 * If it disappears: the join fence (delivery/join-fence.ts) no longer sees deliveries, so
 * `peer_joined` is heard twice or never when peers join at once on different processes.
 * Checked at start-up: both are methods of `Adapter.prototype`, and `broadcast` calls them.
 */
export function hookAdapterDeliveries(adapter: Adapter, hook: DeliveryHook): void {
  const internals = adapter as unknown as AdapterInternals;
  const select: SelectRecipients = internals.apply.bind(adapter);
  const encode = internals._encode.bind(adapter);
  let delivering = false;
  internals._encode = (packet, packetOptions) => {
    const encoded = encode(packet, packetOptions);
    delivering = true;
    return encoded;
  };
  internals.apply = (options, callback) => {
    if (!delivering) {
      select(options, callback);
      return;
    }
    delivering = false;
    hook(options, callback, select);
  };
}

// ---------------------------------------------------------------------------------------------
// socket.io 4.8.3: non-Socket.IO connections in Namespace#sockets
// ---------------------------------------------------------------------------------------------

/** A connection that is not a Socket.IO socket but takes part in the adapter's rooms (raw /ws peers). */
export interface AdapterPeer {
  /**
   * One broadcast's packets as the adapter encoded them (socket.io-parser's text). Every local
   * recipient of a broadcast gets the same array: its identity can key a per-broadcast cache.
   * Called once per recipient per message.
   */
  deliverEncoded(encodedPackets: unknown[]): void;
  /** Closes the connection at Socket.IO's request: disconnectSockets() (`shutdown` false) or io.close() (true). */
  closeBySocketIo(shutdown: boolean): void;
  /** What fetchSockets() reports as the handshake; read rarely, so built on demand. */
  handshake(): Record<string, unknown>;
}

/** An adapter peer socket's `client`: a method, not an arrow function, which tsx would name anew for each peer. */
class EngineWriter {
  constructor(private readonly peer: AdapterPeer) {}

  writeToEngine(encodedPackets: unknown[]): void {
    this.peer.deliverEncoded(encodedPackets);
  }
}

/**
 * What socket.io and its adapters use of an entry of `Namespace#sockets`: the adapter's broadcast
 * writes with `client.writeToEngine`; fetchSockets reads `id`, `handshake`, `rooms`, `data`;
 * socketsJoin/socketsLeave/disconnectSockets call `join`, `leave`, `disconnect`; io.close() calls
 * `_onclose`. Acknowledged broadcasts (`io.timeout(ms).to(room).emit(...)`, which set `acks`) are
 * not supported: the server sends none.
 */
class AdapterPeerSocket {
  readonly data: Record<string, unknown> = {};
  readonly client: { writeToEngine(encodedPackets: unknown[]): void };

  constructor(
    readonly id: string,
    private readonly nsp: Namespace,
    private readonly peer: AdapterPeer,
  ) {
    this.client = new EngineWriter(peer);
  }

  get rooms(): Set<string> {
    return this.nsp.adapter.socketRooms(this.id) ?? new Set();
  }

  get handshake(): Record<string, unknown> {
    return this.peer.handshake();
  }

  join(rooms: string | string[]): void {
    void this.nsp.adapter.addAll(this.id, new Set(typeof rooms === "string" ? [rooms] : rooms));
  }

  leave(room: string): void {
    void this.nsp.adapter.del(this.id, room);
  }

  disconnect(): this {
    this.peer.closeBySocketIo(false);
    return this;
  }

  _onclose(): void {
    this.peer.closeBySocketIo(true);
  }
}

/**
 * Makes `peer` a member of the namespace's socket table under `id`, so that every adapter
 * (in-memory, cluster, Redis) delivers to it what it delivers to Socket.IO sockets, from this
 * process or any other. Put it in its rooms with the adapter's public `addAll`.
 *
 * Internal: socket.io 4.8.3 `Namespace#sockets` (typed as a map of Socket) holding an object that
 * is not a Socket, and the members socket.io calls on its entries without a public contract:
 * `client.writeToEngine(encodedPackets, options)` (socket.io's private `Client#writeToEngine`,
 * called by socket.io-adapter 2.5.8 `Adapter#broadcast` on every recipient) and `_onclose(reason)`
 * (called by `Server#close` on every entry).
 *
 * Why no public API: an adapter delivers only to the entries of `Namespace#sockets`, and only a
 * Socket.IO handshake creates one. Without this, every emit to a room would need a second fan-out
 * for raw peers, on this process and through a second channel between processes.
 *
 * If it disappears: raw /ws peers receive nothing sent to a room (namespaces, private rooms,
 * direct messages), and io.close() throws at the first raw peer still registered, leaving that
 * namespace's adapter open.
 * Checked at start-up: `Client.prototype.writeToEngine`, `Socket.prototype._onclose`, and that
 * `Adapter#broadcast` and `Server#close` call them.
 */
export function registerAdapterPeer(nsp: Namespace, id: string, peer: AdapterPeer): void {
  (nsp.sockets as Map<string, unknown>).set(id, new AdapterPeerSocket(id, nsp, peer));
}

/** Removes what {@link registerAdapterPeer} added; from here on no delivery reaches it. */
export function unregisterAdapterPeer(nsp: Namespace, id: string): void {
  nsp.sockets.delete(id);
}

// ---------------------------------------------------------------------------------------------
// engine.io 6.6.12: the WebSocket transport's `socket`
// ---------------------------------------------------------------------------------------------

interface EngineWebSocketInternals {
  socket?: { bufferedAmount?: number };
}

/**
 * Bytes the WebSocket under an engine.io WebSocket transport holds because the kernel would not
 * take them: above 0 only while the client is not reading. 0 for other transports.
 *
 * Internal: engine.io 6.6.12 `transports.websocket#socket` (`private` in its typings), the ws
 * WebSocket it writes to, and that WebSocket's public `bufferedAmount`.
 *
 * Why no public API: engine.io tells when its own queue is flushed (`flush`, `drain`), but not
 * whether the bytes below it left: its `writable` turns false during every send, even to a client
 * that reads promptly.
 *
 * If it disappears: this reads 0, so a Socket.IO client over WebSocket that stops reading is never
 * disconnected for send_buffer_size and its queue grows without bound. Read only while a peer's
 * engine queue is past the bound. Checked at start-up: the transport class assigns `this.socket`.
 */
export function engineWebSocketBacklog(transport: Transport): number {
  return (transport as unknown as EngineWebSocketInternals).socket?.bufferedAmount ?? 0;
}

// ---------------------------------------------------------------------------------------------
// @socket.io/cluster-adapter 0.3.0: its IPC messages
// ---------------------------------------------------------------------------------------------

/** The `source` marker of @socket.io/cluster-adapter's IPC messages (its private MESSAGE_SOURCE). */
const CLUSTER_ADAPTER_SOURCE = "_sio_adapter";

/** A cluster adapter's IPC message, as far as the primary reads it. */
export interface ClusterAdapterMessage {
  /** The sending adapter (one per worker and namespace). */
  readonly uid: string;
  readonly nsp: string;
}

/**
 * Whether a worker's IPC message comes from its cluster adapter. Called for every IPC message the
 * primary receives.
 *
 * Internal: @socket.io/cluster-adapter 0.3.0 marks its messages `source: "_sio_adapter"`, a
 * private constant, and sends socket.io-adapter's ClusterMessage (`uid`, `nsp`, `type`).
 *
 * Why no public API, and what breaks without it: see {@link clusterAdapterClose}; the primary
 * learns from these messages which adapters each worker runs.
 */
export function isClusterAdapterMessage(message: unknown): message is ClusterAdapterMessage {
  if (typeof message !== "object" || message === null) return false;
  const { source, uid, nsp } = message as { source?: unknown; uid?: unknown; nsp?: unknown };
  return source === CLUSTER_ADAPTER_SOURCE && typeof uid === "string" && typeof nsp === "string";
}

/**
 * The message a worker's cluster adapter sends when it closes (ADAPTER_CLOSE, socket.io-adapter's
 * public MessageType), forged by the primary for a worker that died without sending it.
 *
 * Internal: @socket.io/cluster-adapter 0.3.0's private `source` marker (see
 * {@link isClusterAdapterMessage}); its adapters take any message so marked, for their namespace,
 * from the primary.
 *
 * Why no public API: setupPrimary() only relays; nothing in the library notices a worker that was
 * killed.
 *
 * If it disappears: the other workers count a dead worker for their heartbeat timeout (10 s), and
 * every serverSideEmitWithAck (/stats, /health) waits for it in vain until then. Checked at
 * start-up: the library's entry file defines the marker.
 */
export function clusterAdapterClose(adapter: ClusterAdapterMessage): object {
  return { source: CLUSTER_ADAPTER_SOURCE, type: MessageType.ADAPTER_CLOSE, uid: adapter.uid, nsp: adapter.nsp };
}

// ---------------------------------------------------------------------------------------------
// Node.js (verified on 20.20.2): net.Socket#_handle.readStop()
// ---------------------------------------------------------------------------------------------

/**
 * Stops the socket's handle reading from the kernel: bytes that arrive from now on stay in the
 * kernel and go with the handle to the process it is sent to. Returns false when the handle lacks
 * the method (the internal is gone); true otherwise, also for a socket without a handle (closed).
 *
 * Internal: Node.js `net.Socket#_handle` (the libuv TCP handle) and its `readStop()`, verified on
 * Node 20.20.2 (Node is not pinned: package.json asks for >= 20).
 *
 * Why no public API: `socket.pause()` stops only the JavaScript stream; the handle keeps reading
 * into the socket's buffer, and once the handle is sent to a worker (child_process send with
 * `keepOpen: false`) what it reads here is dropped.
 *
 * If it disappears: bytes a client sends while its connection moves from the cluster primary to a
 * worker can be lost, and the connection hangs. Checked on first use (the router logs an error).
 */
export function stopReadingAtHandle(socket: TcpSocket): boolean {
  const handle = (socket as unknown as { _handle?: { readStop?: unknown } | null })._handle;
  if (handle === undefined || handle === null) return true;
  if (typeof handle.readStop !== "function") return false;
  (handle.readStop as () => void).call(handle);
  return true;
}

// ---------------------------------------------------------------------------------------------
// ws 8.18.3: Receiver#end (inherited from Writable), called again on a finished receiver
// ---------------------------------------------------------------------------------------------

/**
 * Makes `end()` without arguments on a ws Receiver that has finished return at once. ws ends a
 * connection's receiver when the close frame arrives, then again when the socket ends and again
 * when it closes (websocket.js socketOnEnd and socketOnClose): on a finished stream, Writable's
 * `end()` does nothing but build an ERR_STREAM_ALREADY_FINISHED that nobody reads, with its stack
 * trace, about 8 µs each, twice for every connection that closes normally. The guarded call has no
 * other effect to skip (no chunk, no callback), so nothing changes but the cost. `Receiver` is part
 * of ws's public exports; its `end` being Writable's is the internal this relies on (checked at
 * start-up). Idempotent.
 *
 * If it disappears (ws defines its own `end`): the guard is not installed, and connections cost
 * those two errors again.
 */
export function quietRepeatedReceiverEnds(): void {
  const prototype = prototypeOf(wsReceiver()) as Writable | undefined;
  if (prototype === undefined) return;
  if (prototype.end === quietEnd || prototype.end !== Writable.prototype.end) return;
  prototype.end = quietEnd as Writable["end"];
}

/**
 * The same for the socket of a WebSocket that ws takes over: ws ends it after its close frame, and
 * again when the client's end arrives (socketOnEnd). Set on the socket itself, not on every socket
 * of the process; a call with arguments, or on a socket still writable, is Duplex's own.
 */
export function quietRepeatedSocketEnds(socket: Duplex): void {
  socket.end = quietSocketEnd as Duplex["end"];
}

function quietSocketEnd(this: Duplex, ...args: unknown[]): Duplex {
  if (args.length === 0 && this.writableFinished) return this;
  return ((Object.getPrototypeOf(this) as Duplex).end as (...given: unknown[]) => Duplex).apply(this, args);
}

/** ws's Receiver class (exported by ws, not declared by its typings), the copy the server's `ws` imports resolve to. */
function wsReceiver(): unknown {
  return loadQuietly(() => (createRequire(import.meta.url)("ws") as { Receiver?: unknown }).Receiver);
}

function quietEnd(this: Writable, ...args: unknown[]): Writable {
  if (args.length === 0 && this.writableFinished) return this;
  return (Writable.prototype.end as (...given: unknown[]) => Writable).apply(this, args);
}

// ---------------------------------------------------------------------------------------------
// The start-up self-check
// ---------------------------------------------------------------------------------------------

/** One reason the installed libraries cannot be trusted, for one package. */
export interface LibraryProblem {
  readonly package: string;
  /** The member that is missing, when that is the problem. */
  readonly member?: string;
  /** One line saying what is wrong, with the expected and installed versions. */
  readonly text: string;
}

/** Thrown by {@link assertLibraryInternals}; its message lists every problem, one per line. */
export class LibraryInternalsError extends Error {
  constructor(readonly problems: readonly LibraryProblem[]) {
    super(
      "peer-server cannot start: the installed libraries are not the ones src/internals/library-internals.ts was verified against\n" +
        problems.map((problem) => `  ${problem.text}`).join("\n") +
        "\nInstall the locked versions (npm ci), or re-verify the internals before changing a pin.",
    );
    this.name = "LibraryInternalsError";
  }
}

/** One installed copy of a package: the version in its package.json, and where it is. */
export interface InstalledCopy {
  /** undefined when the package cannot be found. */
  readonly version: string | undefined;
  readonly path: string;
}

/** The library objects whose members are checked (the real ones by default: see {@link libraryTargets}). */
export interface InternalsTargets {
  /** socket.io-adapter's `Adapter` class. */
  adapter: unknown;
  /** socket.io's `Client` class (dist/client.js; not exported). */
  client: unknown;
  /** socket.io's `Socket` class. */
  socket: unknown;
  /** socket.io's `Server` class. */
  server: unknown;
  /** engine.io's WebSocket transport class (`transports.websocket`). */
  engineWebSocket: unknown;
  /** The text of @socket.io/cluster-adapter's entry file. */
  clusterAdapterSource: string;
  /** ws's `Receiver` class. */
  wsReceiver: unknown;
}

/** What {@link assertLibraryInternals} compares; each defaults to the real thing. */
export interface LibraryCheckInputs {
  /** The version each package must be, as package.json pins it. */
  expected: Readonly<Record<string, string | undefined>>;
  /** Every copy of a package that this server, socket.io or the cluster and Redis adapters load. */
  installed: (name: CheckedPackage) => readonly InstalledCopy[];
  targets: InternalsTargets;
}

/**
 * Fails fast, with one {@link LibraryInternalsError} listing every problem, when an installed copy
 * of a package in {@link VERIFIED_VERSIONS} is not the exact version pinned in package.json, when
 * that pin is not the verified version, or when a member the accessors above need is missing.
 * Synchronous; reads a few package.json files. Call it once at start-up, before anything is wired.
 */
export function assertLibraryInternals(inputs: Partial<LibraryCheckInputs> = {}): void {
  const expected = inputs.expected ?? pinnedVersions();
  const installed = inputs.installed ?? installedCopies;
  const targets = inputs.targets ?? libraryTargets();
  const problems: LibraryProblem[] = [];
  const versions = new Map<CheckedPackage, string>();

  for (const name of Object.keys(VERIFIED_VERSIONS) as CheckedPackage[]) {
    const verified = VERIFIED_VERSIONS[name];
    const pin = expected[name];
    const copies = installed(name);
    versions.set(name, copies.map((copy) => copy.version ?? "none").join(", "));
    if (pin === undefined || !EXACT_VERSION.test(pin)) {
      problems.push({ package: name, text: `${name}: package.json pins ${pin === undefined ? "nothing" : `"${pin}"`}; it must pin exactly ${verified}` });
      continue;
    }
    for (const copy of copies) {
      if (copy.version !== pin) {
        problems.push({ package: name, text: `${name}: expected ${pin} (package.json), installed ${copy.version ?? "none"} (${copy.path})` });
      }
    }
    if (pin !== verified) {
      problems.push({
        package: name,
        text: `${name}: package.json pins ${pin}, but its internals were verified against ${verified}; re-verify them, then update VERIFIED_VERSIONS`,
      });
    }
  }

  for (const check of MEMBER_CHECKS) {
    if (check.present(targets)) continue;
    const name = check.package;
    problems.push({
      package: name,
      member: check.member,
      text: `${name} (expected ${expected[name] ?? VERIFIED_VERSIONS[name]}, installed ${versions.get(name) ?? "none"}): ${check.member} is missing`,
    });
  }

  if (problems.length > 0) throw new LibraryInternalsError(problems);
}

const EXACT_VERSION = /^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?$/;

interface MemberCheck {
  package: CheckedPackage;
  member: string;
  present(targets: InternalsTargets): boolean;
}

const prototypeOf = (value: unknown): unknown => (typeof value === "function" ? (value as { prototype: unknown }).prototype : undefined);
const hasMethod = (owner: unknown, name: string): boolean =>
  typeof owner === "object" && owner !== null && typeof (owner as Record<string, unknown>)[name] === "function";
/** The source of a method or class, for members that exist only on instances or calls made inside a method. */
const sourceOf = (value: unknown): string => (typeof value === "function" ? Function.prototype.toString.call(value) : "");
const methodSource = (owner: unknown, name: string): string =>
  hasMethod(owner, name) ? sourceOf((owner as Record<string, unknown>)[name]) : "";

const MEMBER_CHECKS: readonly MemberCheck[] = [
  { package: "socket.io-adapter", member: "Adapter.prototype.apply", present: (t) => hasMethod(prototypeOf(t.adapter), "apply") },
  { package: "socket.io-adapter", member: "Adapter.prototype._encode", present: (t) => hasMethod(prototypeOf(t.adapter), "_encode") },
  {
    package: "socket.io-adapter",
    member: "Adapter.prototype.broadcast calling this._encode(), this.apply() and socket.client.writeToEngine()",
    present: (t) => {
      const source = methodSource(prototypeOf(t.adapter), "broadcast");
      return source.includes("this._encode(") && source.includes("this.apply(") && source.includes(".client.writeToEngine(");
    },
  },
  { package: "socket.io", member: "Client.prototype.writeToEngine (dist/client.js)", present: (t) => hasMethod(prototypeOf(t.client), "writeToEngine") },
  { package: "socket.io", member: "Socket.prototype._onclose", present: (t) => hasMethod(prototypeOf(t.socket), "_onclose") },
  {
    package: "socket.io",
    member: "Server.prototype.close calling _onclose() on each socket",
    present: (t) => methodSource(prototypeOf(t.server), "close").includes("._onclose("),
  },
  {
    package: "engine.io",
    member: "transports.websocket assigning this.socket (its ws WebSocket)",
    present: (t) => sourceOf(t.engineWebSocket).includes("this.socket = "),
  },
  {
    package: "ws",
    member: "Receiver.prototype.end inherited from Writable",
    present: (t) => {
      const end = (prototypeOf(t.wsReceiver) as { end?: unknown } | undefined)?.end;
      return end === Writable.prototype.end || end === quietEnd;
    },
  },
  {
    package: "@socket.io/cluster-adapter",
    member: `its IPC marker MESSAGE_SOURCE = "${CLUSTER_ADAPTER_SOURCE}"`,
    present: (t) => t.clusterAdapterSource.includes(`MESSAGE_SOURCE = "${CLUSTER_ADAPTER_SOURCE}"`),
  },
];

const projectRequire = createRequire(import.meta.url);
/** The server's own package.json: the nearest one above this module (in src/ or, compiled, in dist/src/) naming the project. */
const PROJECT_MANIFEST = findProjectManifest(dirname(fileURLToPath(import.meta.url)));

function findProjectManifest(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, "package.json");
    if (readManifest(candidate)?.["name"] === "peer-server") return candidate;
    if (dirname(dir) === dir) return join(from, "../../package.json");
  }
}

/** Besides this server itself, the packages whose own copy of a checked package is loaded. */
const LOADED_BY: Readonly<Record<CheckedPackage, readonly string[]>> = {
  "socket.io": [],
  "socket.io-adapter": ["socket.io", "@socket.io/cluster-adapter", "@socket.io/redis-adapter"],
  "engine.io": ["socket.io"],
  "socket.io-parser": ["socket.io"],
  "@socket.io/cluster-adapter": [],
  ws: [],
};

/** The versions package.json pins for the checked packages. */
export function pinnedVersions(): Record<string, string | undefined> {
  const manifest = readManifest(PROJECT_MANIFEST);
  const dependencies = (manifest?.["dependencies"] ?? {}) as Record<string, unknown>;
  const pins: Record<string, string | undefined> = {};
  for (const name of Object.keys(VERIFIED_VERSIONS)) {
    const pin = dependencies[name];
    pins[name] = typeof pin === "string" ? pin : undefined;
  }
  return pins;
}

/** Every copy of `name` that this server or a package in LOADED_BY resolves, each once. */
export function installedCopies(name: CheckedPackage): InstalledCopy[] {
  const roots = new Set<string>();
  const copies: InstalledCopy[] = [];
  const add = (root: string): void => {
    if (roots.has(root)) return;
    roots.add(root);
    const version = readManifest(join(root, "package.json"))?.["version"];
    copies.push({ version: typeof version === "string" ? version : undefined, path: root });
  };
  const own = packageRoot(projectRequire, name);
  if (own === undefined) return [{ version: undefined, path: `${name} cannot be resolved from ${dirname(PROJECT_MANIFEST)}` }];
  add(own);
  for (const loader of LOADED_BY[name]) {
    const loaderRoot = packageRoot(projectRequire, loader);
    if (loaderRoot === undefined) continue; // not installed: it loads nothing
    const root = packageRoot(createRequire(join(loaderRoot, "package.json")), name);
    if (root !== undefined) add(root);
  }
  return copies;
}

/** The real library objects the member checks look at. */
export function libraryTargets(): InternalsTargets {
  return {
    adapter: Adapter,
    client: loadQuietly(() => {
      const root = packageRoot(projectRequire, "socket.io");
      return root === undefined ? undefined : (projectRequire(join(root, "dist", "client.js")) as { Client?: unknown }).Client;
    }),
    socket: Socket,
    server: Server,
    engineWebSocket: transports.websocket,
    clusterAdapterSource: (loadQuietly(() => readFileSync(projectRequire.resolve("@socket.io/cluster-adapter"), "utf8")) as string | undefined) ?? "",
    wsReceiver: wsReceiver(),
  };
}

function loadQuietly(load: () => unknown): unknown {
  try {
    return load();
  } catch {
    return undefined; // reported as the member it should have provided
  }
}

/**
 * The folder of package `name` as `require` resolves it: up from its entry file to the first
 * package.json of that name (an `exports` map may hide `name/package.json`, and folders such as
 * build/cjs may hold a package.json of their own).
 */
function packageRoot(require: NodeJS.Require, name: string): string | undefined {
  let entry: string;
  try {
    entry = require.resolve(name);
  } catch {
    return undefined;
  }
  for (let dir = dirname(entry); ; dir = dirname(dir)) {
    if (readManifest(join(dir, "package.json"))?.["name"] === name) return dir;
    if (dirname(dir) === dir) return undefined;
  }
}

function readManifest(path: string): Record<string, unknown> | undefined {
  try {
    const manifest: unknown = JSON.parse(readFileSync(path, "utf8"));
    return typeof manifest === "object" && manifest !== null ? (manifest as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
