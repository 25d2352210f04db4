import { beforeEach, describe, expect, it } from "vitest";
import type { CallMessage, StoreCall, StoreReply, StoreReplyItem } from "../../src/protocol/cluster-messages.ts";
import { MemoryStore } from "../../src/backends/memory/memory-store.ts";
import { applyMutation, REPLICA_RESUME_HASH, withoutListing } from "../../src/backends/cluster/mutation.ts";
import type { RegisterPeer } from "../../src/backends/state-store.ts";
import { StoreHost, type ReplicaLink } from "../../src/backends/cluster/store-host.ts";
import { FakeClock } from "../helpers/fake-clock.ts";

/**
 * The StoreHost's ordering, with the end of each turn of the event loop under the test's control:
 * the host writes what one turn sent when the fake clock's 0 ms timers run, never on its own.
 */

/** Lets the host's promise chain run: a fixed number of microtask hops, no timer and no sleep. */
async function settle(): Promise<void> {
  for (let hop = 0; hop < 100; hop++) await Promise.resolve();
}

let clock: FakeClock;
let host: StoreHost;
/** Every IPC write of the host, in order, by link name. */
let written: [string, StoreReply][];

beforeEach(() => {
  clock = new FakeClock();
  host = new StoreHost({ schedule: (callback) => void clock.setTimer(callback, 0) });
  written = [];
});

/** One turn of the event loop: what the host does in it, then its writes at the end. */
async function turn(): Promise<void> {
  await settle();
  clock.advance(0);
  await settle();
}

function link(name: string): ReplicaLink {
  return { send: (message) => written.push([name, message]) };
}

/** Links that said hello and got their snapshot; the log is cleared after. */
async function replicas(...names: string[]): Promise<ReplicaLink[]> {
  const links = names.map(link);
  links.forEach((each, i) => host.receive(each, { ps: "hello", id: 100 + i }));
  await turn();
  written = [];
  return links;
}

const peer = (fingerprint: string, alias?: string): RegisterPeer => ({
  fingerprint,
  connectionId: `conn-${fingerprint}`,
  nodeId: "node-1",
  alias,
  aliasCandidates: [`gen-${fingerprint}`],
  meta: {},
  verified: false,
});
const register = (id: number, request: RegisterPeer): CallMessage => ({ ps: "call", id, method: "registerPeer", args: [request] });
/** How a replica gets a registration that took the alias `gen-<fingerprint>`: that alias, no candidates. */
const replayed = (fingerprint: string): RegisterPeer => ({ ...peer(fingerprint), alias: `gen-${fingerprint}`, aliasCandidates: [] });

/** The items of one write, a batch or a single message. */
const itemsOf = (message: StoreReply | undefined): StoreReplyItem[] =>
  message === undefined ? [] : message.ps === "batch" ? message.messages : [message];
/** `result <id>`, `apply <id>` (an apply answering the call <id>), or the kind alone. */
const kinds = (message: StoreReply | undefined): string[] =>
  itemsOf(message).map((item) => (item.ps === "result" || (item.ps === "apply" && item.id !== undefined) ? `${item.ps} ${item.id}` : item.ps));
const writesTo = (name: string): StoreReply[] => written.filter(([to]) => to === name).map(([, message]) => message);

describe("StoreHost ordering", () => {
  it("answers a hello with a snapshot carrying its id, at the end of the turn", async () => {
    host.receive(link("a"), { ps: "hello", id: 7 });
    await settle();
    expect(written).toEqual([]);
    clock.advance(0);
    expect(written).toHaveLength(1);
    expect(written[0]?.[0]).toBe("a");
    expect(written[0]?.[1]).toMatchObject({ ps: "snapshot", id: 7, state: { peers: [], joinSeq: 0 } });
  });

  it("writes a mutation to the other replicas before the answer to its caller, which is its own apply", async () => {
    const [caller] = await replicas("caller", "b", "c");
    host.receive(caller as ReplicaLink, register(1, peer("p1")));
    await settle();
    expect(written).toEqual([]); // nothing before the end of the turn
    clock.advance(0);
    expect(written.map(([to]) => to)).toEqual(["b", "c", "caller"]);
    for (const name of ["b", "c"]) expect(kinds(writesTo(name)[0])).toEqual(["apply"]);
    expect(writesTo("b")[0]).toEqual({ ps: "apply", method: "registerPeer", args: [replayed("p1")] });
    // The caller's answer is its replica's own replay, carrying the call's id: no value is written.
    expect(writesTo("caller")).toEqual([{ ps: "apply", method: "registerPeer", args: [replayed("p1")], id: 1 }]);
  });

  it("keeps every link's applies in the order the host ran them, its failures after them, and writes links with answers last", async () => {
    const [a, b] = await replicas("a", "b", "watcher");
    // Both calls in one turn: a's answer is queued before b's applies, and is still written after them.
    host.receive(a as ReplicaLink, register(1, peer("p1")));
    host.receive(b as ReplicaLink, { ps: "batch", messages: [register(1, peer("p2")), register(2, peer("p4", "gen-p1")), register(3, peer("p3"))] });
    await turn();
    expect(written.map(([to]) => to)).toEqual(["watcher", "a", "b"]);
    expect(kinds(writesTo("watcher")[0])).toEqual(["apply", "apply", "apply"]);
    expect(kinds(writesTo("a")[0])).toEqual(["apply 1", "apply", "apply"]);
    expect(kinds(writesTo("b")[0])).toEqual(["apply", "apply 1", "apply 3", "result 2"]);
    // Every replica gets the applies in the order the host ran them.
    const applied = (name: string): unknown[] => itemsOf(writesTo(name)[0]).flatMap((item) => (item.ps === "apply" ? [item.args[0]] : []));
    for (const name of ["watcher", "a", "b"]) expect(applied(name)).toEqual([replayed("p1"), replayed("p2"), replayed("p3")]);
  });

  it("answers a call of a link that holds no replica with the value", async () => {
    const stranger = link("stranger");
    host.receive(stranger, register(1, peer("p1")));
    await turn();
    expect(writesTo("stranger")).toEqual([{ ps: "result", id: 1, ok: true, value: { alias: "gen-p1" } }]);
  });

  it("answers a failed mutation with its code and replays it nowhere", async () => {
    const [a, b] = await replicas("a", "b", "watcher");
    host.receive(a as ReplicaLink, register(1, peer("p1", "taken")));
    await turn();
    written = [];
    host.receive(b as ReplicaLink, register(1, peer("p2", "taken")));
    await turn();
    expect(written).toEqual([["b", { ps: "result", id: 1, ok: false, code: 409, message: "alias is taken" }]]);
  });

  it("writes nothing to a detached replica, even what was queued for it before it detached", async () => {
    const [a, gone, late] = await replicas("a", "gone", "late");
    host.detach(gone as ReplicaLink);
    host.receive(a as ReplicaLink, register(1, peer("p1")));
    await settle();
    // The apply to `late` is queued; the link goes before the end of the turn.
    host.detach(late as ReplicaLink);
    clock.advance(0);
    expect(written.map(([to]) => to)).toEqual(["a"]);
    host.receive(a as ReplicaLink, register(2, peer("p2")));
    await turn();
    expect(written.map(([to]) => to)).toEqual(["a", "a"]);
  });

  it("replays a registration with the alias it took: a replica fed the applies holds the peer under that alias", async () => {
    const [a] = await replicas("a");
    const replica = new MemoryStore();
    host.receive(a as ReplicaLink, register(1, { ...peer("p1"), aliasCandidates: ["first"] }));
    // p2's first choice is taken by p1: the host gives it its second one.
    host.receive(a as ReplicaLink, register(2, { ...peer("p2"), aliasCandidates: ["first", "second"] }));
    await turn();
    const applies = itemsOf(writesTo("a")[0]).flatMap((item) => (item.ps === "apply" ? [item] : []));
    expect(applies.map((item) => item.args[0])).toEqual([
      { ...peer("p1"), alias: "first", aliasCandidates: [] },
      { ...peer("p2"), alias: "second", aliasCandidates: [] },
    ]);
    for (const item of applies) await applyMutation(replica, { method: item.method, args: item.args } as StoreCall);
    expect((await replica.resolvePeer("second"))?.fingerprint).toBe("p2");
    expect((await replica.resolvePeer("first"))?.fingerprint).toBe("p1");
  });

  it("keeps resume hashes on the primary: replicas get a marker, and replay each resume as the primary decided it", async () => {
    const [a] = await replicas("a");
    const replica = new MemoryStore();
    const feed = async (): Promise<void> => {
      await turn();
      for (const item of itemsOf(writesTo("a").at(-1))) if (item.ps === "apply") await applyMutation(replica, { method: item.method, args: item.args } as StoreCall);
    };
    host.receive(a as ReplicaLink, register(1, { ...peer("p1"), resumeHash: "secret-hash" }));
    await feed();
    expect(JSON.stringify(written)).not.toContain("secret-hash");
    expect(writesTo("a")[0]).toMatchObject({ ps: "apply", args: [{ resumeHash: REPLICA_RESUME_HASH }] });
    const late = link("late");
    host.receive(late, { ps: "hello", id: 1 });
    await turn();
    expect(JSON.stringify(writesTo("late"))).not.toContain("secret-hash");

    const resume = (id: number, resumeHash: string): CallMessage => ({
      ps: "call",
      id,
      method: "resumePeer",
      args: [{ fingerprint: "p1", resumeHash, connectionId: `conn-${id}`, nodeId: "node-2", verified: false, now: 0 }],
    });
    // A wrong hash: refused on the primary, replayed so that the replica refuses it too, unchanged.
    host.receive(a as ReplicaLink, resume(2, "wrong-hash"));
    await feed();
    expect(itemsOf(writesTo("a").at(-1))).toEqual([{ ps: "apply", method: "resumePeer", args: resume(2, "").args, id: 2 }]);
    expect((await replica.resolvePeer("p1"))?.connectionId).toBe("conn-p1");
    // The right one: the replica moves the peer to the new connection as the primary did.
    host.receive(a as ReplicaLink, resume(3, "secret-hash"));
    await feed();
    expect(itemsOf(writesTo("a").at(-1))).toMatchObject([{ ps: "apply", method: "resumePeer", args: [{ resumeHash: REPLICA_RESUME_HASH }], id: 3 }]);
    expect((await replica.resolvePeer("p1"))?.connectionId).toBe("conn-3");
    expect(JSON.stringify(written)).not.toContain("secret-hash");
  });

  it("gives a replica that says hello later the state so far, then only later applies", async () => {
    const [a] = await replicas("a");
    host.receive(a as ReplicaLink, register(1, peer("p1")));
    await turn();
    written = [];
    const late = link("late");
    host.receive(late, { ps: "hello", id: 1 });
    host.receive(a as ReplicaLink, register(2, peer("p2")));
    await turn();
    const [snapshot, apply] = itemsOf(writesTo("late")[0]);
    expect(snapshot).toMatchObject({ ps: "snapshot", id: 1, state: { peers: [{ fingerprint: "p1" }] } });
    expect(apply).toEqual({ ps: "apply", method: "registerPeer", args: [replayed("p2")] });
  });

  it("resolves removeNode once its replay has been written to every replica", async () => {
    const [a] = await replicas("a", "b");
    host.receive(a as ReplicaLink, register(1, peer("p1")));
    await turn();
    written = [];
    let departures: unknown;
    void host.removeNode("node-1").then((result) => (departures = result));
    await settle();
    expect(departures).toBeUndefined();
    clock.advance(0);
    expect(written.map(([to, message]) => [to, kinds(message)])).toEqual([
      ["a", ["apply"]],
      ["b", ["apply"]],
    ]);
    await settle();
    expect(departures).toEqual([{ fingerprint: "p1", scopes: [] }]);
  });
});

describe("replays nobody reads", () => {
  it("join without a member list and leave the store as the full join does", async () => {
    const calls: StoreCall[] = [
      { method: "registerPeer", args: [{ ...peer("a"), alias: "a" }] },
      { method: "registerPeer", args: [{ ...peer("b"), alias: "b" }] },
      { method: "joinNamespace", args: ["lobby", "a", { appType: "chess", meta: undefined, listLimit: 100 }] },
      { method: "joinNamespace", args: ["lobby", "b", { appType: "go", meta: { level: 2 }, listLimit: 100 }] },
      { method: "createRoom", args: ["room", "a", 4] },
      { method: "joinRoom", args: ["room", "b", 100, undefined] },
    ];
    const full = new MemoryStore();
    const bare = new MemoryStore();
    for (const call of calls) {
      const answer = await applyMutation(full, call);
      const replayed = await applyMutation(bare, withoutListing(call));
      if (call.method === "joinNamespace" || call.method === "joinRoom") {
        expect((answer as { peers: unknown[] }).peers.length).toBeGreaterThan(0);
        expect(replayed).toMatchObject({ peers: [], total: (answer as { total: number }).total });
      }
    }
    for (const scope of ["lobby", "room"]) expect(await bare.listMembers(scope, null, 100)).toEqual(await full.listMembers(scope, null, 100));
    expect(await bare.peerDetails("b")).toEqual(await full.peerDetails("b"));
    // The call itself is left as it was: the caller's replica lists with it.
    expect(calls[2]?.args[2]).toMatchObject({ listLimit: 100 });
  });
});
