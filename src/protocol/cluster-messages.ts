import type { MemorySnapshot } from "../state/memory-store.ts";

/**
 * Primary <-> worker messages of the replicated state store, over Node's cluster IPC. Every
 * message carries `ps` so it is told apart from Socket.IO's adapter and sticky messages on the
 * same channel.
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
] as const;
export type Mutation = (typeof MUTATIONS)[number];

export type WorkerToPrimary =
  /** A replica asks for the current state; the answer is a snapshot, then every later apply. */
  | { ps: "hello" }
  /** Runs a mutation on the authoritative store; answered by `result` with the same id. */
  | { ps: "call"; id: number; method: Mutation; args: unknown[] }
  /** The worker is serving: the router may hand it connections. */
  | { ps: "ready"; nodeId: string }
  /**
   * The worker's open connections (raw and Engine.IO, registered or not), reported every second,
   * and how many long-lived hand-offs it has received so far: the primary adds those it sent since
   * to know the machine's exact load.
   */
  | { ps: "load"; connections: number; handOffs: number }
  /** Store messages sent in one turn of the event loop, in order (see state/channel.ts coalescing). */
  | { ps: "batch"; messages: WorkerToPrimary[] }
  | LimitsCalls;

export type PrimaryToWorker =
  | { ps: "snapshot"; state: MemorySnapshot }
  /** With Redis: a sibling worker died; remove its peers now rather than when its heartbeat expires. */
  | { ps: "reap"; nodeId: string }
  /** The node ids of the machine's ready workers, sent to every worker whenever they change (direct links fan out to them). */
  | { ps: "workers"; nodeIds: string[] }
  /** A mutation that succeeded on the primary, to replay on the replica in this exact order. */
  | { ps: "apply"; method: Mutation; args: unknown[] }
  | { ps: "result"; id: number; ok: true; value: unknown }
  | { ps: "result"; id: number; ok: false; code: number; message: string }
  /** Messages sent to this replica in one turn of the event loop, in order. */
  | { ps: "batch"; messages: PrimaryToWorker[] }
  | LimitsResults;

/**
 * Calls to the limits the primary keeps for the whole machine (src/limits/limits-host.ts), each
 * answered by one `limits-result` with the same id. The calls (and the results) of one turn of the
 * event loop travel as one `limits-batch`, apart from the store's batches.
 */
export type LimitsRequest =
  /** One registration of a public key (RegistrationLimiter.consume); the value says whether it is allowed. */
  | { ps: "limits-register"; id: number; key: string }
  /** BudgetStore.save; the value is null. */
  | { ps: "limits-save"; id: number; fingerprint: string; connectionId: string; tokens: number; ttlMs: number }
  /** BudgetStore.take; `from` is null when any kept budget will do; the value is a saved budget or null. */
  | { ps: "limits-take"; id: number; fingerprint: string; from: string | null; waitMs: number };

/** A saved message budget as it crosses the channel (src/limits/budget-store.ts SavedBudget). */
export interface SavedBudgetRecord {
  tokens: number;
  ageMs: number;
  connectionId: string;
}

export type LimitsResult =
  | { ps: "limits-result"; id: number; ok: true; value: boolean | SavedBudgetRecord | null }
  | { ps: "limits-result"; id: number; ok: false; message: string };

export type LimitsCalls = LimitsRequest | { ps: "limits-batch"; messages: LimitsRequest[] };
export type LimitsResults = LimitsResult | { ps: "limits-batch"; messages: LimitsResult[] };

export function isLimitsCall(message: WorkerToPrimary): message is LimitsCalls {
  return message.ps === "limits-register" || message.ps === "limits-save" || message.ps === "limits-take" || message.ps === "limits-batch";
}

export function isWorkerToPrimary(message: unknown): message is WorkerToPrimary {
  return typeof message === "object" && message !== null && typeof (message as { ps?: unknown }).ps === "string";
}

export function isPrimaryToWorker(message: unknown): message is PrimaryToWorker {
  return typeof message === "object" && message !== null && typeof (message as { ps?: unknown }).ps === "string";
}

/**
 * A connection the primary's router hands to a worker, sent with the socket handle: the bytes the
 * router read from it, whether it will stay (an upgrade or a new Engine.IO session, counted as a
 * connection), and whether the machine already held `max_peers` connections when it arrived (the
 * worker then refuses it the way the protocol says).
 */
export interface HandOff {
  ps: "connection";
  data: Uint8Array;
  longLived: boolean;
  full: boolean;
}

export function isHandOff(message: unknown): message is HandOff {
  return typeof message === "object" && message !== null && (message as { ps?: unknown }).ps === "connection";
}
