import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { connectWs, sha256, TRANSPORT_PAIRS, type Envelope, type TestPeer, type Transport } from "../helpers/peers.ts";
import { getJson } from "../helpers/server-process.ts";
import { useServer } from "../helpers/use-server.ts";
import { waitFor } from "../helpers/wait.ts";
import { reply } from "./messaging-support.ts";

// This file is about departures: a closed peer departs at once (resume_grace 0); its resumable
// variants are in resume.test.ts.
const fixture = useServer({
  config: { resume_grace: 0 },
  // Each test counts peers in /stats: start the next one from an empty server.
  afterPeersClosed: async () => {
    await waitFor(stats, (value) => value.total_peers === 0, { timeoutMs: 5_000, intervalMs: 20, what: "the peers of the last test to be cleaned up" });
  },
});

const unique = (label: string): string => `${label}-${randomUUID().slice(0, 8)}`;

interface Stats {
  total_peers: number;
  namespaces: Record<string, number>;
}
const stats = async (): Promise<Stats> => (await getJson(`${fixture.server.http}/stats`)).body as unknown as Stats;

const peer = (transport: Transport, options: { alias?: string; publicKey?: string } = {}): Promise<TestPeer> => fixture.peer(transport, options);

const isLeft = (fingerprint: string) => (message: Envelope) => message.type === "peer_left" && message.from === fingerprint;

/** Takes every peer_left `observer` gets for `fingerprint`, one per scope in `scopes`, and checks nothing more comes. */
async function expectLeftOnce(observer: TestPeer, fingerprint: string, scopes: string[]): Promise<void> {
  const seen: string[] = [];
  for (let index = 0; index < scopes.length; index++) seen.push(String((await observer.next(isLeft(fingerprint))).namespace));
  expect(seen.sort()).toEqual([...scopes].sort());
  expect(await observer.nothing(isLeft(fingerprint))).toBe(true);
}

type Ending = "ws close" | "ws terminate" | "sio disconnect";
const ENDINGS: [Ending, Transport][] = [
  ["ws close", "ws"],
  ["ws terminate", "ws"],
  ["sio disconnect", "sio"],
];

async function departing(ending: Ending, options: { alias?: string; publicKey?: string }): Promise<{ peer: TestPeer; end: () => void }> {
  if (ending === "ws terminate") {
    const ws = fixture.track(await connectWs(fixture.server.ws));
    const registered = await ws.register(options);
    expect(registered.type).toBe("registered");
    // Abrupt: the TCP connection is destroyed with no close frame.
    return { peer: ws, end: () => ws.socket.terminate() };
  }
  const created = await peer(ending === "ws close" ? "ws" : "sio", options);
  return { peer: created, end: () => created.close() };
}

describe.each(ENDINGS)("disconnect by %s", (ending, transport) => {
  const other: Transport = transport === "ws" ? "sio" : "ws";

  it("tells every peer sharing a scope once per scope, passes room ownership, cleans queues and frees identity", async () => {
    const first = unique("ns");
    const second = unique("ns");
    const roomId = unique("room");
    const publicKey = `key-${randomUUID()}`;
    const alias = unique("alias");
    const { peer: leaving, end } = await departing(ending, { publicKey, alias });
    const one = await peer(other);
    const two = await peer(transport);

    await leaving.join(first);
    await leaving.join(second);
    expect((await reply(leaving, "create_room", { payload: { room_id: roomId } })).type).toBe("room_created");
    await one.join(first);
    expect((await reply(one, "join_room", { payload: { room_id: roomId } })).type).toBe("peer_list");
    await two.join(first);
    await two.join(second);
    expect((await reply(two, "join_room", { payload: { room_id: roomId } })).type).toBe("peer_list");
    expect((await reply(leaving, "match", { payload: { namespace: first, group_size: 2 } })).payload).toMatchObject({ status: "waiting" });

    const before = await stats();
    expect(before.total_peers).toBe(3);
    expect(before.namespaces).toMatchObject({ [first]: 3, [second]: 2 });

    end();
    await expectLeftOnce(one, leaving.fingerprint, [first, roomId]);
    await expectLeftOnce(two, leaving.fingerprint, [first, second, roomId]);

    const after = await stats();
    expect(after.total_peers).toBe(2);
    expect(after.namespaces).toMatchObject({ [first]: 2, [second]: 1 });
    // The room passes to the member who joined it earliest.
    expect((await reply(two, "room_info", { payload: { room_id: roomId } })).payload).toEqual({ room_id: roomId, peer_count: 2, max_size: 20, owner: one.fingerprint });
    // The departed peer's ticket is gone: the next requester waits rather than matching a ghost.
    expect((await reply(one, "match", { payload: { namespace: first, group_size: 2 } })).payload).toMatchObject({ status: "waiting" });
    const matched = await reply(two, "match", { payload: { namespace: first, group_size: 2 } });
    expect(matched.type).toBe("matched");
    expect((matched.payload?.["peers"] as { fingerprint: string }[]).map((p) => p.fingerprint)).toEqual([one.fingerprint, two.fingerprint]);
    expect((await one.next("matched")).payload?.["session_id"]).toBe(matched.payload?.["session_id"]);
    // The departed peer is unknown to signals.
    const signal = await reply(one, "signal", { to: leaving.fingerprint, payload: {} });
    expect(signal.payload).toMatchObject({ code: 404 });

    // Same key and alias register again, on either transport.
    const back = await peer(other, { publicKey, alias });
    expect(back.fingerprint).toBe(sha256(publicKey));
    expect(back.alias).toBe(alias);
    expect((await stats()).total_peers).toBe(3);
  });

  it("a peer that never joined anything leaves quietly and frees its alias", async () => {
    const namespace = unique("ns");
    const alias = unique("alias");
    const observer = await peer(other);
    await observer.join(namespace);
    const { peer: leaving, end } = await departing(ending, { alias });
    expect((await stats()).total_peers).toBe(2);
    end();
    await waitFor(stats, (value) => value.total_peers === 1, { timeoutMs: 5_000, intervalMs: 20, what: "/stats to count 1 peer" });
    expect((await stats()).total_peers).toBe(1);
    expect(await observer.nothing(isLeft(leaving.fingerprint))).toBe(true);
    const next = await peer(transport, { alias });
    expect(next.alias).toBe(alias);
  });
});

describe.each(TRANSPORT_PAIRS)("reconnect with the same key: old over %s, new over %s", (oldTransport, newTransport) => {
  it("the new connection wins; the old one is told 409/4001 and closed; others see one peer_left; no ghost", async () => {
    const namespace = unique("ns");
    const roomId = unique("room");
    const publicKey = `key-${randomUUID()}`;
    const alias = unique("alias");
    const observer = await peer(oldTransport === "ws" ? "sio" : "ws");
    await observer.join(namespace);
    const old = await peer(oldTransport, { publicKey, alias });
    await old.join(namespace);
    expect((await reply(old, "create_room", { payload: { room_id: roomId } })).type).toBe("room_created");
    expect((await reply(observer, "join_room", { payload: { room_id: roomId } })).type).toBe("peer_list");
    expect((await reply(old, "match", { payload: { namespace, group_size: 2 } })).payload).toMatchObject({ status: "waiting" });
    await observer.next("peer_joined");

    const fresh = await fixture.connect(newTransport);
    const registered = await fresh.register({ publicKey, alias });
    expect(registered).toMatchObject({ type: "registered", payload: { fingerprint: old.fingerprint, alias } });

    const notice = await old.next("error");
    expect(notice.payload).toMatchObject({ code: 409, close_code: 4001 });
    const closed = await old.closed;
    if (oldTransport === "ws") expect(closed.code).toBe(4001);
    else expect(closed.code).toBe("io server disconnect");

    await expectLeftOnce(observer, old.fingerprint, [namespace, roomId]);
    expect((await reply(observer, "room_info", { payload: { room_id: roomId } })).payload).toMatchObject({ owner: observer.fingerprint, peer_count: 1 });

    // The old connection's cleanup has run (it is closed); the new one is untouched by it.
    const list = await fresh.join(namespace);
    expect(list.payload?.["total"]).toBe(2);
    expect((list.payload?.["peers"] as { fingerprint: string }[]).map((p) => p.fingerprint)).toEqual([observer.fingerprint, fresh.fingerprint]);
    expect(await observer.next("peer_joined")).toMatchObject({ from: fresh.fingerprint, namespace });
    // The old ticket went with the old connection.
    expect((await reply(observer, "match", { payload: { namespace, group_size: 2 } })).payload).toMatchObject({ status: "waiting" });

    observer.send("signal", { to: fresh.fingerprint, payload: { n: 1 } });
    expect(await fresh.next("signal")).toMatchObject({ from: observer.fingerprint, to: fresh.fingerprint, payload: { n: 1 } });
    observer.send("signal", { to: alias, payload: { n: 2 } });
    expect(await fresh.next("signal")).toMatchObject({ from: observer.fingerprint, payload: { n: 2 } });
    fresh.send("signal", { to: observer.fingerprint, payload: { n: 3 } });
    expect(await observer.next("signal")).toMatchObject({ from: fresh.fingerprint, payload: { n: 3 } });

    const counts = await stats();
    expect(counts.total_peers).toBe(2);
    expect(counts.namespaces[namespace]).toBe(2);

    fresh.close();
    await expectLeftOnce(observer, fresh.fingerprint, [namespace]);
    const last = await stats();
    expect(last.total_peers).toBe(1);
    expect(last.namespaces[namespace]).toBe(1);
  });

  it("the replaced connection closing abruptly later does not disturb the new one", async () => {
    const namespace = unique("ns");
    const publicKey = `key-${randomUUID()}`;
    const observer = await peer(newTransport === "ws" ? "sio" : "ws");
    await observer.join(namespace);
    const old = await peer(oldTransport, { publicKey });
    await old.join(namespace);
    await observer.next("peer_joined");
    const fresh = await peer(newTransport, { publicKey });
    await old.closed;
    await observer.next(isLeft(old.fingerprint));
    await fresh.join(namespace);
    await observer.next("peer_joined");
    // Whatever the old socket does now, the new registration stands.
    old.close();
    expect(await observer.nothing(isLeft(fresh.fingerprint))).toBe(true);
    const page = await reply(observer, "discover", { payload: { namespace } });
    expect(page.payload).toMatchObject({ total: 2 });
    observer.send("relay", { to: fresh.fingerprint, payload: { still: "here" } });
    expect(await fresh.next("relay")).toMatchObject({ payload: { still: "here" } });
    expect((await stats()).total_peers).toBe(2);
  });
});
