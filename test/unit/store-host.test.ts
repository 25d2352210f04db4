import { beforeEach, describe, expect, it } from "vitest";
import type { CallMessage, StoreReply, StoreReplyItem } from "../../src/protocol/cluster-messages.ts";
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

/** The items of one write, a batch or a single message. */
const itemsOf = (message: StoreReply | undefined): StoreReplyItem[] =>
  message === undefined ? [] : message.ps === "batch" ? message.messages : [message];
const kinds = (message: StoreReply | undefined): string[] => itemsOf(message).map((item) => (item.ps === "result" ? `result ${item.id}` : item.ps));
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

  it("writes a mutation to the other replicas before the result to its caller", async () => {
    const [caller] = await replicas("caller", "b", "c");
    host.receive(caller as ReplicaLink, register(1, peer("p1")));
    await settle();
    expect(written).toEqual([]); // nothing before the end of the turn
    clock.advance(0);
    expect(written.map(([to]) => to)).toEqual(["b", "c", "caller"]);
    for (const name of ["b", "c"]) expect(kinds(writesTo(name)[0])).toEqual(["apply"]);
    expect(writesTo("b")[0]).toEqual({ ps: "apply", method: "registerPeer", args: [peer("p1")] });
    // The caller's own replica applies before it reads its result, on the same channel.
    expect(kinds(writesTo("caller")[0])).toEqual(["apply", "result 1"]);
    expect(itemsOf(writesTo("caller")[0])[1]).toEqual({ ps: "result", id: 1, ok: true, value: { alias: "gen-p1" } });
  });

  it("puts each link's results after its applies within one flush, and writes links with results last", async () => {
    const [a, b] = await replicas("a", "b", "watcher");
    // Both calls in one turn: a's result is queued before b's apply, and is still written after it.
    host.receive(a as ReplicaLink, register(1, peer("p1")));
    host.receive(b as ReplicaLink, { ps: "batch", messages: [register(1, peer("p2")), register(2, peer("p3"))] });
    await turn();
    expect(written.map(([to]) => to)).toEqual(["watcher", "a", "b"]);
    expect(kinds(writesTo("watcher")[0])).toEqual(["apply", "apply", "apply"]);
    expect(kinds(writesTo("a")[0])).toEqual(["apply", "apply", "apply", "result 1"]);
    expect(kinds(writesTo("b")[0])).toEqual(["apply", "apply", "apply", "result 1", "result 2"]);
    // Every replica gets the applies in the order the host ran them.
    const applied = (name: string): unknown[] => itemsOf(writesTo(name)[0]).flatMap((item) => (item.ps === "apply" ? [item.args[0]] : []));
    for (const name of ["watcher", "a", "b"]) expect(applied(name)).toEqual([peer("p1"), peer("p2"), peer("p3")]);
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
    expect(apply).toEqual({ ps: "apply", method: "registerPeer", args: [peer("p2")] });
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
