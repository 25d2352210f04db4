import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { TRANSPORT_PAIRS, type Envelope, type Fields, type TestPeer, type Transport } from "../helpers/peers.ts";
import { useServer } from "../helpers/use-server.ts";

// A closed peer departs at once here (resume_grace 0): resume has its own tests (resume.test.ts).
const fixture = useServer({ config: { resume_grace: 0 } });

const unique = (label: string): string => `${label}-${randomUUID().slice(0, 8)}`;

type Criteria = Record<string, unknown>;

/** A registered peer that joined `namespace` with an app_type and meta, so match entries can be checked in full. */
async function member(transport: Transport, namespace: string, index = 0): Promise<TestPeer> {
  const created = await fixture.peer(transport);
  const list = await created.join(namespace, { app_type: `app-${transport}`, meta: { index } });
  expect(list.type).toBe("peer_list");
  return created;
}

const entry = (p: TestPeer, index = 0) => ({ fingerprint: p.fingerprint, alias: p.alias, app_type: `app-${p.transport}`, meta: { index }, verified: false });

/** Sends `match` (or `match_cancel`) and returns the direct reply: `match`, `matched` or `error`. */
function request(from: TestPeer, type: "match" | "match_cancel", payload: Record<string, unknown>): Promise<Envelope> {
  const fields: Fields = { payload };
  return from.transport === "sio" ? from.request(type, fields) : from.request(type, fields, ["match", "matched"]);
}

const match = (from: TestPeer, namespace: string, groupSize: number, criteria: Criteria = {}): Promise<Envelope> =>
  request(from, "match", { namespace, group_size: groupSize, criteria });

async function expectWaiting(from: TestPeer, namespace: string, groupSize: number, criteria: Criteria = {}): Promise<void> {
  const reply = await match(from, namespace, groupSize, criteria);
  expect(reply, JSON.stringify(reply)).toEqual({ type: "match", payload: { status: "waiting", namespace } });
}

async function expectMatched(from: TestPeer, namespace: string, groupSize: number, criteria: Criteria = {}): Promise<Envelope> {
  const reply = await match(from, namespace, groupSize, criteria);
  expect(reply.type, JSON.stringify(reply)).toBe("matched");
  return reply;
}

async function expectMatchError(from: TestPeer, payload: Record<string, unknown>, code: number): Promise<void> {
  const reply = await request(from, "match", payload);
  expect(reply.type, JSON.stringify(reply)).toBe("error");
  expect(reply.payload).toMatchObject({ code, ref: "match" });
}

const fingerprints = (matched: Envelope): unknown[] =>
  ((matched.payload?.["peers"] as { fingerprint: string }[] | undefined) ?? []).map((p) => p.fingerprint);

describe.each(TRANSPORT_PAIRS)("matchmaking: first over %s, second over %s", (firstTransport, secondTransport) => {
  it("the first request waits; the second forms a group of 2 that both learn of", async () => {
    const namespace = unique("mm");
    const a = await member(firstTransport, namespace, 0);
    const b = await member(secondTransport, namespace, 1);
    const criteria = { mode: "duel", level: 3, ranked: true };
    await expectWaiting(a, namespace, 2, criteria);
    const direct = await expectMatched(b, namespace, 2, criteria);
    const event = await a.next("matched");
    for (const message of [direct, event]) {
      expect(message).toMatchObject({ namespace, payload: { namespace, peers: [entry(a, 0), entry(b, 1)] } });
      expect(message.payload?.["session_id"]).toEqual(expect.stringMatching(/^[0-9a-f]{32}$/));
    }
    expect(event.payload?.["session_id"]).toBe(direct.payload?.["session_id"]);
    expect(await b.nothing("matched")).toBe(true);
  });

  it("criteria key order does not matter", async () => {
    const namespace = unique("mm");
    const a = await member(firstTransport, namespace);
    const b = await member(secondTransport, namespace);
    await expectWaiting(a, namespace, 2, { region: "eu", level: 1, ranked: false });
    await expectMatched(b, namespace, 2, { ranked: false, level: 1, region: "eu" });
    await a.next("matched");
  });

  it("1 and \"1\" do not match; different group sizes do not match", async () => {
    const namespace = unique("mm");
    const a = await member(firstTransport, namespace);
    const b = await member(secondTransport, namespace);
    const c = await member(secondTransport, namespace);
    const d = await member(firstTransport, namespace);
    await expectWaiting(a, namespace, 2, { level: 1 });
    await expectWaiting(b, namespace, 2, { level: "1" });
    await expectWaiting(c, namespace, 3, { level: 1 });
    // The next {level: 1} pair request matches the one equal ticket, nobody else.
    const group = await expectMatched(d, namespace, 2, { level: 1 });
    expect(fingerprints(group)).toEqual([a.fingerprint, d.fingerprint]);
    await a.next("matched");
    expect(await b.nothing("matched")).toBe(true);
    expect(await c.nothing("matched", 50)).toBe(true);
  });

  it("match_cancel replies cancelled, and the group then forms without that peer", async () => {
    const namespace = unique("mm");
    const a = await member(firstTransport, namespace);
    const b = await member(secondTransport, namespace);
    const c = await member(firstTransport, namespace);
    await expectWaiting(a, namespace, 2);
    expect(await request(a, "match_cancel", { namespace })).toEqual({ type: "match", payload: { status: "cancelled", namespace } });
    await expectWaiting(b, namespace, 2);
    const group = await expectMatched(c, namespace, 2);
    expect(fingerprints(group)).toEqual([b.fingerprint, c.fingerprint]);
    await b.next("matched");
    expect(await a.nothing("matched")).toBe(true);
  });

  it("a peer that disconnects while waiting is never part of a later group", async () => {
    const namespace = unique("mm");
    const gone = await member(firstTransport, namespace);
    const b = await member(secondTransport, namespace);
    const c = await member(firstTransport, namespace);
    await expectWaiting(gone, namespace, 2);
    gone.close();
    await b.next((message) => message.type === "peer_left" && message.from === gone.fingerprint);
    await expectWaiting(b, namespace, 2);
    const group = await expectMatched(c, namespace, 2);
    expect(fingerprints(group)).toEqual([b.fingerprint, c.fingerprint]);
  });

  it("a peer that leaves the namespace while waiting is never part of a later group", async () => {
    const namespace = unique("mm");
    const leaver = await member(firstTransport, namespace);
    const b = await member(secondTransport, namespace);
    const c = await member(secondTransport, namespace);
    await expectWaiting(leaver, namespace, 2);
    leaver.send("leave", { payload: { namespace } });
    await b.next((message) => message.type === "peer_left" && message.from === leaver.fingerprint);
    await expectWaiting(b, namespace, 2);
    const group = await expectMatched(c, namespace, 2);
    expect(fingerprints(group)).toEqual([b.fingerprint, c.fingerprint]);
    expect(await leaver.nothing("matched")).toBe(true);
    // Its ticket is gone, not just hidden.
    const cancel = await request(leaver, "match_cancel", { namespace });
    expect(cancel.payload).toMatchObject({ code: 404 });
  });
});

describe.each(["ws", "sio"] as const)("matchmaking over %s", (transport) => {
  const other: Transport = transport === "ws" ? "sio" : "ws";

  it("a group of 4 across both transports: all get the same session and the peers oldest ticket first", async () => {
    const namespace = unique("mm");
    const peers = [
      await member(transport, namespace, 0),
      await member(other, namespace, 1),
      await member(transport, namespace, 2),
      await member(other, namespace, 3),
    ];
    // Tickets are taken in a different order than joins: the list follows tickets.
    const order = [2, 0, 3, 1];
    for (const index of order.slice(0, 3)) await expectWaiting(peers[index] as TestPeer, namespace, 4, { map: "x" });
    const last = peers[1] as TestPeer;
    const direct = await expectMatched(last, namespace, 4, { map: "x" });
    const events = await Promise.all([0, 2, 3].map((index) => (peers[index] as TestPeer).next("matched")));
    const expected = order.map((index) => entry(peers[index] as TestPeer, index));
    const sessionId = direct.payload?.["session_id"];
    expect(sessionId).toEqual(expect.stringMatching(/^[0-9a-f]{32}$/));
    for (const message of [direct, ...events]) {
      expect(message).toMatchObject({ type: "matched", namespace, payload: { namespace, session_id: sessionId } });
      expect(message.payload?.["peers"]).toEqual(expected);
    }
  });

  it("group_size 1 or 33, and nested or non-object criteria, are refused with 400", async () => {
    const namespace = unique("mm");
    const a = await member(transport, namespace);
    await expectMatchError(a, { namespace, group_size: 1 }, 400);
    await expectMatchError(a, { namespace, group_size: 33 }, 400);
    await expectMatchError(a, { namespace }, 400);
    await expectMatchError(a, { namespace, group_size: 2, criteria: { level: { min: 1 } } }, 400);
    await expectMatchError(a, { namespace, group_size: 2, criteria: { tags: ["a"] } }, 400);
    await expectMatchError(a, { namespace, group_size: 2, criteria: "ranked" }, 400);
    // None of these left a ticket behind.
    expect((await request(a, "match_cancel", { namespace })).payload).toMatchObject({ code: 404 });
    // The limits themselves are accepted.
    await expectWaiting(a, namespace, 32);
    await expectWaiting(a, namespace, 2);
  });

  it("a non-member is refused with 403", async () => {
    const namespace = unique("mm");
    await member(other, namespace);
    const outsider = await fixture.peer(transport);
    await expectMatchError(outsider, { namespace, group_size: 2 }, 403);
    await expectMatchError(outsider, { namespace: unique("nowhere"), group_size: 2 }, 403);
  });

  it("match_cancel without a ticket is 404", async () => {
    const namespace = unique("mm");
    const a = await member(transport, namespace);
    const reply = await request(a, "match_cancel", { namespace });
    expect(reply.type).toBe("error");
    expect(reply.payload).toMatchObject({ code: 404, ref: "match_cancel" });
    await expectWaiting(a, namespace, 2);
    await request(a, "match_cancel", { namespace });
    expect((await request(a, "match_cancel", { namespace })).payload).toMatchObject({ code: 404 });
  });

  it("a new match replaces the old ticket: never matched with itself, never twice", async () => {
    const namespace = unique("mm");
    const a = await member(transport, namespace);
    const b = await member(other, namespace);
    const c = await member(transport, namespace);
    await expectWaiting(a, namespace, 2);
    await expectWaiting(a, namespace, 2);
    const group = await expectMatched(b, namespace, 2);
    expect(fingerprints(group)).toEqual([a.fingerprint, b.fingerprint]);
    await a.next("matched");
    expect(await a.nothing("matched")).toBe(true);
    // Both tickets were consumed: the next requester waits.
    await expectWaiting(c, namespace, 2);
  });

  it("a new match with other criteria leaves the old queue", async () => {
    const namespace = unique("mm");
    const a = await member(transport, namespace);
    const b = await member(other, namespace);
    const c = await member(other, namespace);
    await expectWaiting(a, namespace, 2, { mode: "x" });
    await expectWaiting(a, namespace, 2, { mode: "y" });
    await expectWaiting(b, namespace, 2, { mode: "x" });
    const group = await expectMatched(c, namespace, 2, { mode: "y" });
    expect(fingerprints(group)).toEqual([a.fingerprint, c.fingerprint]);
    expect(await b.nothing("matched")).toBe(true);
  });

  it("tickets in different namespaces do not meet", async () => {
    const first = unique("mm");
    const second = unique("mm");
    const a = await member(transport, first);
    const b = await member(other, second);
    await expectWaiting(a, first, 2);
    await expectWaiting(b, second, 2);
  });
});
