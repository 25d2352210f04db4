import { deserialize, serialize } from "node:v8";
import { describe, expect, it } from "vitest";
import {
  MUTATIONS,
  primaryToWorkerGuard,
  workerToPrimaryGuard,
  type Mutation,
  type MutationArgs,
  type PrimaryToWorker,
  type WorkerToPrimary,
} from "../../src/protocol/cluster-messages.ts";
import { MemoryStore } from "../../src/backends/memory/memory-store.ts";
import type { RegisterPeer } from "../../src/backends/state-store.ts";

/** A guard and what it reported, one entry per dropped message. */
function guarded<T>(make: (dropped: (ps: unknown, problem: string) => void) => (message: unknown) => message is T) {
  const drops: [unknown, string][] = [];
  const guard = make((ps, problem) => drops.push([ps, problem]));
  return { guard, drops };
}

const request: RegisterPeer = { fingerprint: "f", connectionId: "c", nodeId: "n", alias: undefined, aliasCandidates: ["a"], meta: {}, verified: false };
const ticket = { namespace: "ns", fingerprint: "f", groupSize: 2, criteria: {}, sessionId: "s" };

/** Well-formed arguments of every mutation: a new mutation does not compile without its entry. */
const ARGS: { [K in Mutation]: MutationArgs[K] } = {
  registerPeer: [request],
  unregisterPeer: ["f", "c"],
  updateMeta: ["f", { level: 1 }],
  joinNamespace: ["ns", "f", { appType: "app", meta: undefined, listLimit: 50 }],
  leaveScope: ["ns", "f"],
  createRoom: ["room", "f", 4, { maxScopes: 64, maxRooms: 8 }],
  joinRoom: ["room", "f", 50, { now: 1, caps: { maxScopes: 64 } }],
  kick: ["room", "f", "g", { now: 1, until: 60_001 }],
  requestMatch: [ticket],
  cancelMatch: ["ns", "f"],
  removeNode: ["n"],
  addBan: [{ id: "b", kind: "ip", value: "127.0.0.2", reason: "", createdAt: 1, expiresAt: 2 }, 1],
  removeBan: ["b", 1],
  suspendPeer: ["f", "c", 15_000],
  resumePeer: [{ fingerprint: "f", resumeHash: "h", connectionId: "c", nodeId: "n", verified: false, now: 1 }],
  bufferMessage: [["f", "g"], 'signal\t{"from":"x"}', 64],
  expireSuspended: [1],
};
const calls = MUTATIONS.map((method, id) => ({ ps: "call", id, method, args: ARGS[method] }) as WorkerToPrimary);
const applies = MUTATIONS.map((method) => ({ ps: "apply", method, args: ARGS[method] }) as PrimaryToWorker);

/** One well-formed message of every kind: a new kind does not compile without its sample. */
const FROM_WORKER: { [K in WorkerToPrimary["ps"]]: Extract<WorkerToPrimary, { ps: K }> } = {
  hello: { ps: "hello", id: 1 },
  call: { ps: "call", id: 2, method: "joinRoom", args: ["room", "f", 50] },
  batch: { ps: "batch", messages: [{ ps: "call", id: 3, method: "removeNode", args: ["n"] }, { ps: "call", id: 4, method: "registerPeer", args: [request] }] },
  ready: { ps: "ready", nodeId: "n" },
  load: { ps: "load", connections: 3, handOffs: 2 },
  "limits-register": { ps: "limits-register", id: 5, key: "k", address: "127.0.0.2" },
  "limits-save": { ps: "limits-save", id: 6, fingerprint: "f", connectionId: "c", tokens: 1.5, ttlMs: 1_000 },
  "limits-take": { ps: "limits-take", id: 7, fingerprint: "f", from: null, waitMs: 0 },
  "limits-batch": {
    ps: "limits-batch",
    messages: [
      { ps: "limits-take", id: 8, fingerprint: "f", from: "c", waitMs: 100 },
      { ps: "limits-register", id: 9, key: "k", address: null },
    ],
  },
  "admin-response": { ps: "admin-response", id: 10, status: 204, body: "" },
  "quota-release": { ps: "quota-release", addresses: ["127.0.0.2", "::1"] },
  admit: { ps: "admit", id: 12, address: "127.0.0.2" },
  forward: { ps: "forward", to: 1, data: Buffer.from("GET").toString("base64"), longLived: true, full: false, quota: "127.0.0.2" },
  "cannot-listen": { ps: "cannot-listen", message: "listen EADDRINUSE" },
};

const FROM_PRIMARY: { [K in PrimaryToWorker["ps"]]: Extract<PrimaryToWorker, { ps: K }> } = {
  snapshot: { ps: "snapshot", id: 1, state: new MemoryStore().exportSnapshot() },
  apply: { ps: "apply", method: "kick", args: ["room", "f", "g"], id: 9 },
  result: { ps: "result", id: 2, ok: false, code: 409, message: "alias is taken" },
  batch: {
    ps: "batch",
    messages: [
      { ps: "apply", method: "cancelMatch", args: ["ns", "f"] },
      { ps: "result", id: 3, ok: true, value: true },
      { ps: "result", id: 4, ok: true, value: undefined },
    ],
  },
  "limits-result": { ps: "limits-result", id: 5, ok: true, value: { tokens: 2, ageMs: 10, connectionId: "c" } },
  "limits-batch": {
    ps: "limits-batch",
    messages: [
      { ps: "limits-result", id: 6, ok: true, value: "address" },
      { ps: "limits-result", id: 11, ok: true, value: "key" },
      { ps: "limits-result", id: 7, ok: true, value: null },
      { ps: "limits-result", id: 8, ok: false, message: "down" },
    ],
  },
  reap: { ps: "reap", nodeId: "n" },
  workers: { ps: "workers", nodeIds: ["a", "b"] },
  stop: { ps: "stop" },
  "admin-request": { ps: "admin-request", id: 9, method: "GET", path: "/admin/bans", body: "" },
  connection: { ps: "connection", data: Buffer.from("GET / HTTP/1.1\r\n\r\n").toString("base64"), longLived: true, full: false, quota: "127.0.0.2" },
  admitted: { ps: "admitted", id: 10, to: 1, full: false, quota: "127.0.0.2" },
};
/** The other form of `admitted`: a refusal. */
const REFUSED_ADMISSION: PrimaryToWorker = { ps: "admitted", id: 11, refuse: { status: 429, reason: "too many connections from this address" } };

/** Messages of others on the same IPC channel, and values that are no message at all: ignored, never reported. */
const FOREIGN: unknown[] = [
  { source: "_sio_adapter", type: 13, uid: "u", nsp: "/" },
  { cmd: "NODE_CLUSTER" },
  {},
  [],
  null,
  undefined,
  42,
  "hello",
];

describe("cluster message guards", () => {
  it("accept one message of every kind, also after a V8 serialization round trip as IPC makes", () => {
    const worker = guarded(workerToPrimaryGuard);
    const primary = guarded(primaryToWorkerGuard);
    for (const message of Object.values(FROM_WORKER)) {
      expect(worker.guard(message), message.ps).toBe(true);
      expect(worker.guard(deserialize(serialize(message))), message.ps).toBe(true);
      expect(primary.guard(message), `${message.ps} is not for a worker`).toBe(false);
    }
    for (const message of [...Object.values(FROM_PRIMARY), REFUSED_ADMISSION]) {
      expect(primary.guard(message), message.ps).toBe(true);
      expect(primary.guard(deserialize(serialize(message))), message.ps).toBe(true);
    }
    expect(worker.drops).toEqual([]);
    // Every kind of the other direction is dropped, a batch of calls included.
    expect(primary.drops.map(([ps]) => ps)).toEqual(Object.keys(FROM_WORKER));
  });

  it("accept a bundle of a side's messages, and drop one that holds a malformed message, another side's, or a bundle", () => {
    const worker = guarded(workerToPrimaryGuard);
    const primary = guarded(primaryToWorkerGuard);
    expect(worker.guard({ ps: "bundle", messages: Object.values(FROM_WORKER) })).toBe(true);
    expect(worker.guard(deserialize(serialize({ ps: "bundle", messages: Object.values(FROM_WORKER) })))).toBe(true);
    expect(primary.guard({ ps: "bundle", messages: [...Object.values(FROM_PRIMARY), REFUSED_ADMISSION] })).toBe(true);
    expect(worker.drops).toEqual([]);
    expect(worker.guard({ ps: "bundle", messages: [FROM_WORKER.load, { ps: "load", connections: "many", handOffs: 0 }] })).toBe(false);
    expect(worker.guard({ ps: "bundle", messages: [FROM_PRIMARY.stop] })).toBe(false);
    expect(worker.guard({ ps: "bundle", messages: [{ ps: "bundle", messages: [FROM_WORKER.load] }] })).toBe(false);
    expect(worker.guard({ ps: "bundle", messages: FROM_WORKER.load })).toBe(false);
    expect(worker.drops).toEqual([
      ["bundle", "connections and handOffs are not numbers"],
      ["bundle", "an item's kind does not belong in this batch"],
      ["bundle", "an item's kind does not belong in this batch"],
      ["bundle", "messages is not an array"],
    ]);
  });

  it("accept a call and an apply of every mutation", () => {
    const worker = guarded(workerToPrimaryGuard);
    const primary = guarded(primaryToWorkerGuard);
    for (const call of calls) expect(worker.guard(call)).toBe(true);
    for (const apply of applies) expect(primary.guard(apply)).toBe(true);
    expect(worker.guard({ ps: "batch", messages: calls })).toBe(true);
    expect(primary.guard({ ps: "batch", messages: applies })).toBe(true);
    expect([...worker.drops, ...primary.drops]).toEqual([]);
  });

  it("ignore other messages on the channel without reporting them", () => {
    const worker = guarded(workerToPrimaryGuard);
    const primary = guarded(primaryToWorkerGuard);
    for (const message of FOREIGN) {
      expect(worker.guard(message)).toBe(false);
      expect(primary.guard(message)).toBe(false);
    }
    expect([...worker.drops, ...primary.drops]).toEqual([]);
  });

  const badFromWorker: [string, unknown][] = [
    ["an unknown kind", { ps: "goodbye" }],
    ["a kind that is not a string", { ps: 3 }],
    ["a kind named after an Object.prototype member", { ps: "constructor" }],
    ["a kind named __proto__", JSON.parse('{"ps":"__proto__"}')],
    ["a null-prototype object of an unknown kind", Object.assign(Object.create(null) as object, { ps: "toString" })],
    ["a hello without id", { ps: "hello" }],
    ["a call with a string id", { ps: "call", id: "1", method: "removeNode", args: ["n"] }],
    ["a call of a read", { ps: "call", id: 1, method: "resolvePeer", args: ["f"] }],
    ["a call of an Object.prototype member", { ps: "call", id: 1, method: "hasOwnProperty", args: ["f"] }],
    ["a call without args", { ps: "call", id: 1, method: "removeNode" }],
    ["a call with args not an array", { ps: "call", id: 1, method: "removeNode", args: "n" }],
    ["a call with too few args", { ps: "call", id: 1, method: "joinNamespace", args: ["ns", "f"] }],
    ["a call with too many args", { ps: "call", id: 1, method: "removeNode", args: ["n", "m"] }],
    ["a call with an arg of the wrong type", { ps: "call", id: 1, method: "createRoom", args: ["room", "f", "4"] }],
    ["a call with an optional arg of the wrong type", { ps: "call", id: 1, method: "kick", args: ["room", "f", "g", 60_001] }],
    ["a call with a null optional arg", { ps: "call", id: 1, method: "joinRoom", args: ["room", "f", 50, null] }],
    ["a call with a null object arg", { ps: "call", id: 1, method: "registerPeer", args: [null] }],
    ["a batch that is not an array", { ps: "batch", messages: null }],
    ["a batch with a malformed call", { ps: "batch", messages: [FROM_WORKER.call, { ps: "call", id: 2, method: "kick", args: [] }] }],
    ["a batch with a non-object item", { ps: "batch", messages: [FROM_WORKER.call, 7] }],
    ["a store batch with a limits call", { ps: "batch", messages: [FROM_WORKER["limits-register"]] }],
    ["a store batch with a nested batch", { ps: "batch", messages: [FROM_WORKER.batch] }],
    ["ready without nodeId", { ps: "ready" }],
    ["load with a string count", { ps: "load", connections: "3", handOffs: 0 }],
    ["a registration without key", { ps: "limits-register", id: 1, address: null }],
    ["a registration without address", { ps: "limits-register", id: 1, key: "k" }],
    ["a registration with a numeric address", { ps: "limits-register", id: 1, key: "k", address: 2130706434 }],
    ["a quota release with a number", { ps: "quota-release", addresses: ["127.0.0.2", 2] }],
    ["a save without ttl", { ps: "limits-save", id: 1, fingerprint: "f", connectionId: "c", tokens: 1 }],
    ["a take with an undefined from", { ps: "limits-take", id: 1, fingerprint: "f", waitMs: 0 }],
    ["a limits batch with a store call", { ps: "limits-batch", messages: [FROM_WORKER.call] }],
    ["a ban without its clock", { ps: "call", id: 1, method: "addBan", args: [ARGS.addBan[0]] }],
    ["an admin response without a status", { ps: "admin-response", id: 1, body: "{}" }],
    ["an admin response with a parsed body", { ps: "admin-response", id: 1, status: 200, body: {} }],
    ["an admission without an id", { ps: "admit", address: "127.0.0.2" }],
    ["an admission with a numeric address", { ps: "admit", id: 1, address: 2 }],
    ["a forward without its target", { ps: "forward", data: "", longLived: true, full: false }],
    ["a forward whose data is no base64 text (bytes as JSON writes them)", { ps: "forward", to: 1, data: { 0: 71, 1: 69, 2: 84 }, longLived: true, full: false }],
    ["a listen failure without its message", { ps: "cannot-listen" }],
    ["ready with a string port", { ps: "ready", nodeId: "n", port: "80" }],
  ];

  const badFromPrimary: [string, unknown][] = [
    ["a kind of the other direction", { ps: "hello", id: 1 }],
    ["a snapshot without state", { ps: "snapshot", id: 1 }],
    ["a snapshot whose state is not one", { ps: "snapshot", id: 1, state: { peers: {} } }],
    ["an apply of an unknown method", { ps: "apply", method: "dropEverything", args: [] }],
    ["an apply with wrong args", { ps: "apply", method: "updateMeta", args: ["f", "meta"] }],
    ["an apply answering a call with a string id", { ps: "apply", method: "kick", args: ["room", "f", "g"], id: "1" }],
    ["a result without ok", { ps: "result", id: 1, value: 1 }],
    ["a failed result without code", { ps: "result", id: 1, ok: false, message: "x" }],
    ["a batch with a limits result", { ps: "batch", messages: [FROM_PRIMARY["limits-result"]] }],
    ["a batch with a notice", { ps: "batch", messages: [FROM_PRIMARY.reap] }],
    ["a limits result with a string value", { ps: "limits-result", id: 1, ok: true, value: "yes" }],
    ["a limits result with a boolean value", { ps: "limits-result", id: 1, ok: true, value: false }],
    ["a limits result with a partial budget", { ps: "limits-result", id: 1, ok: true, value: { tokens: 1 } }],
    ["a failed limits result without message", { ps: "limits-result", id: 1, ok: false }],
    ["a limits batch with a store result", { ps: "limits-batch", messages: [FROM_PRIMARY.result] }],
    ["reap without nodeId", { ps: "reap", nodeId: 1 }],
    ["workers with a non-string id", { ps: "workers", nodeIds: ["a", 2] }],
    ["workers without a list", { ps: "workers", nodeIds: "a" }],
    ["a hand-off whose data is no base64 text (bytes as JSON writes them)", { ps: "connection", data: { 0: 71, 1: 69, 2: 84 }, longLived: true, full: false }],
    ["a hand-off without full", { ps: "connection", data: "", longLived: false }],
    ["a hand-off with a quota that is no address", { ps: "connection", data: "", longLived: true, full: false, quota: 1 }],
    ["a snapshot without bans", { ps: "snapshot", id: 1, state: { peers: [], scopes: [], queues: [], joinSeq: 0 } }],
    ["an admin request without an id", { ps: "admin-request", method: "GET", path: "/admin/bans", body: "" }],
    ["an admin request without a body", { ps: "admin-request", id: 1, method: "GET", path: "/admin/bans" }],
    ["a placement without full", { ps: "admitted", id: 1, to: 0 }],
    ["a placement without its target", { ps: "admitted", id: 1, full: false }],
    ["a refusal without a reason", { ps: "admitted", id: 1, refuse: { status: 429 } }],
    ["a placement with a quota that is no address", { ps: "admitted", id: 1, to: 0, full: false, quota: 7 }],
  ];

  const dropsOnce = (make: typeof workerToPrimaryGuard | typeof primaryToWorkerGuard, message: unknown): void => {
    const { guard, drops } = guarded<unknown>(make);
    let accepted: boolean | undefined;
    expect(() => (accepted = guard(message))).not.toThrow();
    expect(accepted).toBe(false);
    expect(drops).toEqual([[(message as { ps: unknown }).ps, expect.any(String)]]);
  };

  it.each(badFromWorker)("drop and report once, without throwing, from a worker: %s", (_name, message) => {
    dropsOnce(workerToPrimaryGuard, message);
  });

  it.each(badFromPrimary)("drop and report once, without throwing, from the primary: %s", (_name, message) => {
    dropsOnce(primaryToWorkerGuard, message);
  });
});
