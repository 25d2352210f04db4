import type { Endpoint } from "../core/targets.ts";
import type { Snapshot } from "../core/proc.ts";
import type { ClientKind } from "./clients.ts";

/**
 * The load process's job catalogue and the IPC messages between it and the orchestrator.
 * A job is plain data (it crosses a process boundary); a scenario builds one per case.
 */

export type Transport = "ws" | "sio";

export interface ConnectParams {
  readonly transport: Transport;
  /** Connections counted (after the warm-up ones). */
  readonly count: number;
  readonly warmup: number;
  /** Connections being set up at once. */
  readonly concurrency: number;
  readonly maxMs: number;
  /** How each connection ends once registered: a closing handshake (default) or a drop (no handshake). */
  readonly ending?: "close" | "drop";
}

/**
 * Silent peers held during a run (registered, joined in twos, never addressed) on these endpoints,
 * `perEndpoint` on each, e.g. on a node no message is for; endpoints the target lacks are skipped.
 */
export interface IdlePeers {
  readonly endpoints: readonly number[];
  readonly perEndpoint: number;
}

export interface SignalParams {
  readonly transport: Transport;
  readonly pairs: number;
  /** Messages each client keeps in flight towards its partner. */
  readonly window: number;
  readonly payload: "sdp" | "ice";
  readonly warmupMs: number;
  readonly durationMs: number;
  /** Hard cap on messages counted in the measurement window. */
  readonly maxMessages: number;
  /**
   * Endpoints of each pair's first and second client (indexes into the target's endpoints, modulo
   * their number), e.g. [0, 1] for every pair across nodes 0 and 1. Default: round-robin by client index.
   */
  readonly pairEndpoints?: readonly [number, number];
  /** Silent peers held during the run, e.g. on a node no signal targets. */
  readonly idle?: IdlePeers;
  /** After set-up, ask the admin API (GET /admin/stats?detail=peers) how many pairs have their two peers in different processes. */
  readonly placement?: boolean;
}

export interface BroadcastParams {
  readonly transport: Transport;
  /** Namespace members, the sender included. */
  readonly peers: number;
  /** Broadcasts in flight (sent, not yet received by every member). */
  readonly window: number;
  /** Size of the `data` string in each broadcast. */
  readonly dataBytes: number;
  readonly warmupMs: number;
  readonly durationMs: number;
  readonly maxBroadcasts: number;
  /**
   * Endpoints the members are spread over, member i on `memberEndpoints[i % length]` (indexes into
   * the target's endpoints, modulo their number), e.g. [0, 1] for half the namespace on each of
   * nodes 0 and 1. Default: round-robin over all the target's endpoints.
   */
  readonly memberEndpoints?: readonly number[];
  /**
   * Members that broadcast: the first `senders` (so with two member endpoints, one on each when
   * 2), taking turns: each broadcast that has reached every member is followed by one from the
   * next sender, so `window` stays the number in flight. Default 1.
   */
  readonly senders?: number;
  /** Silent peers held during the run, e.g. on a node that holds no member. */
  readonly idle?: IdlePeers;
}

export interface HoldParams {
  readonly transport: Transport;
  readonly peers: number;
  /** Peers per namespace (each join is announced to the namespace, so this bounds set-up traffic). */
  readonly namespaceSize: number;
  readonly concurrency: number;
  /** Quiet time before the RSS reading, after every peer has joined. */
  readonly settleMs: number;
  /** Loopback source addresses to spread connections over (127.0.0.1 .. 127.0.0.N); 1 is plenty below ~25,000 peers. */
  readonly sourceAddresses: number;
}

export interface MatchParams {
  readonly transport: Transport;
  /** Tickets left waiting (unique criteria, so they never match) while the throughput is measured. */
  readonly queued: number;
  readonly namespaceSize: number;
  /** Peers that match each other in pairs, again and again, in the first namespace. */
  readonly active: number;
  readonly concurrency: number;
  readonly durationMs: number;
  readonly maxMatches: number;
}

/** How a stress connection is opened: raw /ws, Socket.IO over WebSocket only, or Socket.IO polling first then upgraded. */
export type StressTransport = "ws" | "sio" | "polling";

export interface StressParams {
  /** Connections opened in all, assigned round-robin to the transports of `mix`. */
  readonly connections: number;
  readonly mix: readonly StressTransport[];
  /** Connections being set up at once, over all load processes. */
  readonly concurrency: number;
  /** Each connection must connect, register (and upgrade, when polling first) within this. */
  readonly deadlineMs: number;
  /** Load processes the connections are spread over (each process has its own open-file limit). */
  readonly processes: number;
  /** /ws and WebSocket-only Socket.IO connections come from 127.0.0.2 .. 127.0.0.(1+N) (0: the default address). */
  readonly sourceAddresses: number;
  /** Bound for the whole opening phase. */
  readonly maxMs: number;
  /** How long every connection stays open after the last one completed, before all are closed. */
  readonly holdMs: number;
}

/** One transport's outcomes in a stress run (per load process, then summed). */
export interface StressCounts {
  attempted: number;
  /** Transport connection up (101 for /ws; Socket.IO connected) within the deadline. */
  opened: number;
  /** `registered` received within the deadline. */
  registered: number;
  /** Every step done within the deadline (polling first: registered and upgraded). */
  completed: number;
  /** An error or a close before the deadline. */
  failed: number;
  /** Neither done nor failed by the deadline. */
  hung: number;
  /** Hung ones that completed, or failed, after the deadline. */
  lateCompleted: number;
  lateFailed: number;
  /** Completed ones the server closed before the end of the run. */
  dropped: number;
}

/** A connection with no answer by its deadline: where it stopped. */
export interface HungConnection {
  readonly transport: StressTransport;
  readonly loadProcess: number;
  readonly index: number;
  /** The step it was waiting for at the deadline. */
  readonly step: string;
  /** Details gathered on the way (local port, Engine.IO sid: its "w<N>-" prefix names the worker). */
  readonly details: readonly string[];
  /** What happened after the deadline, by the time connections were closed. */
  outcome: string;
}

export interface StressShardSummary {
  readonly counts: Record<StressTransport, StressCounts>;
  /** "<transport> at <step>: <error>" -> count, for failures before the deadline, late failures and drops. */
  readonly reasons: Record<string, number>;
  readonly hung: readonly HungConnection[];
  /** Time to complete of each connection completed within the deadline, ms. */
  readonly latencies: readonly number[];
  /** From the first connection started to the last one completed or failed (hung ones excluded), ms. */
  readonly openMs: number;
  /** CPU this load process used while opening, ms. */
  readonly cpuMs: number;
}

export type ToStressClient =
  | {
      readonly type: "start";
      readonly shard: number;
      readonly shards: number;
      readonly params: StressParams;
      readonly endpoint: Endpoint;
      readonly client: ClientKind;
      readonly runId: string;
    }
  | { readonly type: "close" };

export type FromStressClient =
  | { readonly type: "ready" }
  | { readonly type: "progress"; readonly settled: number; readonly completed: number; readonly failed: number; readonly hung: number }
  | { readonly type: "opened"; readonly openMs: number }
  | { readonly type: "closed"; readonly summary: StressShardSummary };

/**
 * Crowd: `peers` registered + joined peers held at once over several load processes (each may hold
 * only `ulimit -n` sockets) and loopback source addresses, then checks made at full load.
 */
export interface CrowdParams {
  readonly peers: number;
  readonly namespaceSize: number;
  /** Peer i uses Socket.IO when i % sioEvery === sioEvery - 1, raw /ws otherwise; 0: all /ws, 1: all Socket.IO. */
  readonly sioEvery: number;
  readonly processes: number;
  /** Peers being set up at once in each load process. */
  readonly concurrency: number;
  /** Source addresses 127.0.0.1 .. 127.0.0.N, round-robin by peer index (~28,000 ephemeral ports each towards one server port). */
  readonly sourceAddresses: number;
  /** Bound for the whole set-up phase. */
  readonly maxMs: number;
  /** Quiet time after the last peer joined, before the readings. */
  readonly settleMs: number;
  /** Pings and signals between two of the held peers at full load (sequential, each timed). */
  readonly checks: number;
  /** Try one connection more than `peers` and report how the server answered (at max_peers: error 503, close 1013). */
  readonly overflow: boolean;
}

export type ToCrowdClient =
  | { readonly type: "start"; readonly shard: number; readonly from: number; readonly to: number; readonly params: CrowdParams; readonly endpoint: Endpoint; readonly runId: string }
  /** Ping from peer `a`, signal from `a` to `b`, `count` times each (indexes of this process's range). */
  | { readonly type: "check"; readonly a: number; readonly b: number; readonly count: number }
  | { readonly type: "close" };

export interface CrowdShardSummary {
  readonly completed: number;
  readonly failed: number;
  /** Failure reason -> count. */
  readonly reasons: Record<string, number>;
  readonly joinedSeen: number;
  readonly joinedExpected: number;
  /** From the first peer started to the last one joined, ms. */
  readonly setupMs: number;
  readonly cpuMs: number;
  readonly rssKb: number;
  /** Fingerprint and transport of the peers of this process's first namespace (for choosing the checked pair). */
  readonly firstNamespace: readonly { readonly index: number; readonly fingerprint: string; readonly transport: Transport }[];
}

export type FromCrowdClient =
  | { readonly type: "ready" }
  | { readonly type: "progress"; readonly done: number; readonly failed: number }
  | { readonly type: "opened"; readonly summary: CrowdShardSummary }
  | { readonly type: "checked"; readonly pingMs: readonly number[]; readonly signalMs: readonly number[]; readonly errors: readonly string[] };

/** The dialects peer-server serves besides its own protocol (src/dialects/), as the bench drives them. */
export type DialectName = "pigeon" | "p2p" | "randomchat";

/**
 * Offer relay of one dialect: `pairs` pairs of that dialect's clients set up as its users do
 * (PeerPigeon: announce into one network per pair; p2p: IDENTIFY, JOIN_ROOM one room per pair;
 * random chat: everyone `available`, the server pairs), then each client keeps `window` SDP offers
 * in flight towards its partner, as the signal job does.
 */
export interface DialectSignalParams {
  readonly dialect: DialectName;
  readonly pairs: number;
  readonly window: number;
  readonly warmupMs: number;
  readonly durationMs: number;
  /** Hard cap on offers counted in the measurement window. */
  readonly maxMessages: number;
}

/** Random-chat pairing: `users` clients connect (round-robin over the endpoints), then all send `available` at once. */
export interface DialectPairingParams {
  readonly users: number;
  /** Connections being set up at once. */
  readonly concurrency: number;
  /** Bound for pairing everyone, after the last `available` was sent. */
  readonly maxMs: number;
}

/** Every job kind and its parameters. A new kind: add it here and a runner in load/worker.ts. */
export interface JobParamsByKind {
  connect: ConnectParams;
  signal: SignalParams;
  broadcast: BroadcastParams;
  hold: HoldParams;
  match: MatchParams;
  stress: StressParams;
  crowd: CrowdParams;
  "dialect-signal": DialectSignalParams;
  "dialect-pairing": DialectPairingParams;
}

export type JobKind = keyof JobParamsByKind;
export type LoadJob = { [K in JobKind]: { readonly kind: K; readonly params: JobParamsByKind[K] } }[JobKind];

/** A job's figures, by metric key (see the scenario's MetricSpec list). */
export type Metrics = Record<string, number>;

export interface JobResult {
  readonly metrics: Metrics;
  /** Things a reader should know about this run (e.g. "load process saturated"). */
  readonly notes: readonly string[];
}

export interface ProgressUpdate {
  readonly phase: string;
  readonly done?: number;
  readonly total?: number;
  /** A live figure, e.g. messages per second over the last interval. */
  readonly rate?: number;
  readonly unit?: string;
}

export type ToWorker =
  | { readonly type: "run"; readonly job: LoadJob; readonly endpoints: readonly Endpoint[]; readonly client: ClientKind }
  | { readonly type: "snapshot"; readonly id: number; readonly snapshot: Snapshot };

export type FromWorker =
  | { readonly type: "progress"; readonly update: ProgressUpdate }
  | { readonly type: "checkpoint"; readonly id: number; readonly name: string }
  | { readonly type: "result"; readonly result: JobResult }
  | { readonly type: "failed"; readonly message: string };
