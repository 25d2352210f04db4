import { describe, expect, it } from "vitest";
import { MemoryStore } from "../../../src/backends/memory/memory-store.ts";
import type { ResumedPeer, ResumePeer } from "../../../src/backends/state-store.ts";
import { fingerprintOf } from "../../../src/core/alias.ts";
import { resumeHashOf } from "../../../src/core/resumption.ts";
import type { ConnectionEnd } from "../../../src/observability/connection-log.ts";
import { CoreHarness, errorCode, gate, settle, type Peer } from "../../helpers/core-harness.ts";

/**
 * Session resume in the core, over a real MemoryStore and a fake clock: which closes suspend, what
 * a suspended peer keeps and is sent, the resume, and the grace running out (the timer of the
 * process that suspended the peer, and the periodic sweep of any process).
 */

const GRACE_MS = 15_000;
/** The client's side ended the connection: it may come back. */
const DROPPED: ConnectionEnd = { code: 1006, reason: "", byServer: false };

const tokenOf = (peer: Peer): string => {
  const registered = peer.connection.of("registered")[0] ?? peer.connection.received.find((message) => message.type === "registered");
  return String((registered?.body["payload"] as { resume_token?: unknown }).resume_token);
};

/** What a connection was sent, by type, after its `registered`. */
const typesAfterRegistered = (peer: { connection: Peer["connection"] }): string[] => {
  const types = peer.connection.received.map((message) => message.type);
  return types.slice(types.indexOf("registered") + 1);
};

/** A MemoryStore whose next resumePeer waits at `gate` once asked (`entered` resolves then). */
class GatedStore extends MemoryStore {
  gate: Promise<void> | undefined;
  private reached!: () => void;
  readonly entered = new Promise<void>((resolve) => (this.reached = resolve));

  override async resumePeer(request: ResumePeer): Promise<ResumedPeer | undefined> {
    const waitFor = this.gate;
    this.gate = undefined;
    if (waitFor !== undefined) {
      this.reached();
      await waitFor;
    }
    return super.resumePeer(request);
  }
}

async function dropped(core: CoreHarness, peer: Peer): Promise<void> {
  peer.connection.rooms.clear();
  await core.hub.close(peer.session, DROPPED);
}

async function resume(core: CoreHarness, key: string, token: string) {
  const next = core.connect();
  const reply = await core.request(next, "register", { payload: { public_key: key, resume_token: token } });
  await settle();
  return { ...next, reply };
}

describe("session resume", () => {
  it("a dropped peer is suspended: no peer_left; a signal for it waits; its token resumes it whole, the signal right after `registered`", async () => {
    const core = new CoreHarness();
    const x = await core.peer("key-x", "lobby");
    const partner = await core.peer("key-p", "lobby");
    const room = await core.request(partner, "create_room", { payload: { room_id: "den" } });
    expect(room.type).toBe("room_created");
    await core.request(x, "join_room", { payload: { room_id: "den" } });
    const token = tokenOf(x);

    await dropped(core, x);
    expect(core.delivery.of("peer_left")).toEqual([]);
    expect(await core.store.resolvePeer(x.fingerprint)).toMatchObject({ suspended: true });
    expect((await core.request(partner, "signal", { to: x.fingerprint, payload: { sdp: "gap" } })).type).toBe("ok");
    expect(core.delivery.toPeers).toEqual([]);

    core.clock.advance(GRACE_MS - 1);
    const back = await resume(core, "key-x", token);
    expect(back.reply.body).toEqual({
      from: x.fingerprint,
      payload: { fingerprint: x.fingerprint, alias: x.alias, verified: false, resume_token: token, resumed: true, missed: 0 },
    });
    expect(back.connection.of("signal").map((message) => message.body)).toEqual([{ from: partner.fingerprint, to: x.fingerprint, payload: { sdp: "gap" }, ts: expect.any(Number) as number }]);
    expect(typesAfterRegistered(back)).toEqual(["signal"]);
    expect([...back.connection.rooms].sort()).toEqual([back.connection.id, `fp:${x.fingerprint}`, "ns:den", "ns:lobby"].sort());
    // Live again, everywhere: a broadcast reaches it, it signals its partner on this process.
    await core.request(partner, "broadcast", { payload: { namespace: "lobby", data: 1 } });
    expect(back.connection.of("broadcast")).toHaveLength(1);
    expect((await core.request(back, "signal", { to: partner.fingerprint, payload: {} })).type).toBe("ok");
    expect(partner.connection.of("signal")).toHaveLength(1);
    // Its grace's timer finds nothing to depart.
    core.clock.advance(GRACE_MS);
    await settle();
    expect(core.delivery.of("peer_left")).toEqual([]);
  });

  it("when the grace runs out the peer departs: one peer_left per scope, its token then registers afresh", async () => {
    const core = new CoreHarness();
    const x = await core.peer("key-x", "lobby", "hall");
    await core.peer("key-p", "lobby");
    const token = tokenOf(x);
    await dropped(core, x);

    core.clock.advance(GRACE_MS - 1);
    await settle();
    expect(core.delivery.of("peer_left")).toEqual([]);
    core.clock.advance(100);
    await settle();
    expect(core.delivery.of("peer_left").map((emit) => emit.body)).toEqual([
      { from: x.fingerprint, namespace: "lobby" },
      { from: x.fingerprint, namespace: "hall" },
    ]);
    expect(await core.store.resolvePeer(x.fingerprint)).toBeUndefined();
    const late = await resume(core, "key-x", token);
    expect(late.reply.body["payload"]).toMatchObject({ resumed: false });
    expect((late.reply.body["payload"] as { resume_token: string }).resume_token).not.toBe(token);
    expect(core.delivery.of("peer_left")).toHaveLength(2);
  });

  it("any process sweeps ended suspensions, even one it did not make", async () => {
    const core = new CoreHarness();
    core.hub.start();
    const watcher = await core.peer("key-w", "lobby");
    const fingerprint = fingerprintOf("key-gone");
    await core.store.registerPeer({ fingerprint, connectionId: "elsewhere", nodeId: "node-dead", alias: undefined, aliasCandidates: ["gone-peer-01"], meta: {}, verified: false, resumeHash: "h" });
    await core.store.joinNamespace("lobby", fingerprint, { appType: "", meta: undefined, listLimit: 0 });
    await core.store.suspendPeer(fingerprint, "elsewhere", core.clock.now + 1_000);

    core.clock.advance(6_000);
    await settle();
    expect(watcher.connection.of("peer_left").map((message) => message.body)).toEqual([{ from: fingerprint, namespace: "lobby" }]);
  });

  it("a wrong token registers afresh: the suspended registration departs with one peer_left", async () => {
    const core = new CoreHarness();
    const x = await core.peer("key-x", "lobby");
    const partner = await core.peer("key-p", "lobby");
    await dropped(core, x);
    const fresh = await resume(core, "key-x", "A".repeat(43));
    expect(fresh.reply.body["payload"]).toMatchObject({ fingerprint: x.fingerprint, resumed: false });
    expect(partner.connection.of("peer_left").map((message) => message.body)).toEqual([{ from: x.fingerprint, namespace: "lobby" }]);
    expect(fresh.connection.rooms.has("ns:lobby")).toBe(false);
  });

  it("the buffer keeps the newest resume_buffer messages; missed counts the rest", async () => {
    const core = new CoreHarness({ config: { resume_buffer: 3 } });
    const x = await core.peer("key-x", "lobby");
    const partner = await core.peer("key-p", "lobby");
    await dropped(core, x);
    for (let seq = 0; seq < 5; seq++) await core.request(partner, "relay", { to: x.alias, payload: { seq } });
    const back = await resume(core, "key-x", tokenOf(x));
    expect(back.reply.body["payload"]).toMatchObject({ resumed: true, missed: 2 });
    expect(back.connection.of("relay").map((message) => (message.body["payload"] as { seq: number }).seq)).toEqual([2, 3, 4]);
  });

  it("a kick and a match for a suspended peer wait in its buffer", async () => {
    const core = new CoreHarness();
    const owner = await core.peer("key-o", "lobby");
    const x = await core.peer("key-x", "lobby");
    await core.request(owner, "create_room", { payload: { room_id: "den" } });
    await core.request(x, "join_room", { payload: { room_id: "den" } });
    await core.request(x, "match", { payload: { namespace: "lobby", group_size: 2, criteria: {} } });
    await dropped(core, x);

    expect((await core.request(owner, "kick", { payload: { room_id: "den", fingerprint: x.fingerprint } })).type).toBe("ok");
    const matched = await core.request(owner, "match", { payload: { namespace: "lobby", group_size: 2, criteria: {} } });
    expect(matched.type).toBe("matched");
    expect(core.delivery.of("kick")).toEqual([]);
    expect(core.delivery.of("matched")).toEqual([{ rooms: [], type: "matched", body: matched.body, except: [], fence: undefined }]);

    const back = await resume(core, "key-x", tokenOf(x));
    expect(typesAfterRegistered(back)).toEqual(["kick", "matched"]);
    expect(back.connection.rooms.has("ns:den")).toBe(false);
    expect(back.connection.rooms.has("ns:lobby")).toBe(true);
  });

  it("resuming over the live connection replaces it (4001) without a peer_left", async () => {
    const core = new CoreHarness();
    const x = await core.peer("key-x", "lobby");
    const partner = await core.peer("key-p", "lobby");
    const back = await resume(core, "key-x", tokenOf(x));
    expect(back.reply.body["payload"]).toMatchObject({ resumed: true, missed: 0 });
    expect(x.connection.closeCode).toBe(4001);
    await settle();
    expect(partner.connection.of("peer_left")).toEqual([]);
    expect(back.connection.rooms.has("ns:lobby")).toBe(true);
    expect(await core.store.resolvePeer(x.fingerprint)).toMatchObject({ connectionId: back.connection.id });
  });

  it("closes for cause, or of unknown cause, depart at once", async () => {
    const core = new CoreHarness();
    const partner = await core.peer("key-p", "lobby");
    for (const [index, end] of [
      { code: 4002, reason: "slow consumer", byServer: true },
      { code: 1009, reason: "too big", byServer: false },
      { code: 1001, reason: "server shutting down", byServer: true },
      undefined,
    ].entries()) {
      const x = await core.peer(`key-${index}`, "lobby");
      await core.hub.close(x.session, end);
      expect(partner.connection.of("peer_left").map((message) => message.body["from"])).toContain(x.fingerprint);
    }
  });

  it("the operator's disconnect of a suspended peer departs it at once", async () => {
    const core = new CoreHarness();
    const partner = await core.peer("key-p", "lobby");
    const x = await core.peer("key-x", "lobby");
    await dropped(core, x);
    expect(await core.hub.moderation.disconnect(x.fingerprint)).toMatchObject({ fingerprint: x.fingerprint });
    expect(partner.connection.of("peer_left").map((message) => message.body)).toEqual([{ from: x.fingerprint, namespace: "lobby" }]);
    expect(await core.store.resolvePeer(x.fingerprint)).toBeUndefined();
  });

  it("a keepalive timeout suspends, as any drop does", async () => {
    const core = new CoreHarness();
    const partner = await core.peer("key-p", "lobby");
    const x = await core.peer("key-x", "lobby");
    await core.hub.close(x.session, { code: 1006, reason: "no sign of life within pong_wait", byServer: true });
    expect(partner.connection.of("peer_left")).toEqual([]);
    expect(await core.store.resolvePeer(x.fingerprint)).toMatchObject({ suspended: true });
  });

  it("a resume attempt at the store holds what the direct links bring for the peer until after `registered`", async () => {
    const store = new GatedStore();
    const core = new CoreHarness({ store });
    const x = await core.peer("key-x", "lobby");
    await dropped(core, x);
    const opened = gate();
    store.gate = opened.promise;
    const next = core.connect();
    const pending = core.request(next, "register", { payload: { public_key: "key-x", resume_token: tokenOf(x) } });
    await store.entered;
    // Another worker's delivery arrives while the resume is at the store.
    expect(core.hub.deliverEncoded(x.fingerprint, "relay", '{"from":"w","to":"x","payload":{"via":"link"},"ts":1}')).toBe(false);
    expect(next.connection.received).toEqual([]);
    opened.open();
    await pending;
    await settle();
    expect(next.connection.received.map((message) => message.type)).toEqual(["registered", "relay"]);
  });

  it("a delivery that raced the suspension on this process goes to the buffer", async () => {
    const core = new CoreHarness();
    const x = await core.peer("key-x", "lobby");
    x.connection.rooms.clear();
    const closing = core.hub.close(x.session, DROPPED);
    // The suspension is at the store: another worker still routed a message here.
    expect(core.hub.deliverEncoded(x.fingerprint, "signal", '{"from":"w","to":"x","payload":{"raced":true},"ts":1}')).toBe(false);
    await closing;
    await settle();
    const back = await resume(core, "key-x", tokenOf(x));
    expect(back.connection.of("signal").map((message) => message.body["payload"])).toEqual([{ raced: true }]);
  });

  it("a proven peer resumes only with a proof: 409 without one, and it stays suspended", async () => {
    const core = new CoreHarness();
    const watcher = await core.peer("key-w", "lobby");
    const fingerprint = fingerprintOf("key-proven");
    const token = "T".repeat(43);
    await core.store.registerPeer({ fingerprint, connectionId: "gone", nodeId: "node-test", alias: undefined, aliasCandidates: ["proven-peer-01"], meta: {}, verified: true, resumeHash: resumeHashOf(token) });
    await core.store.joinNamespace("lobby", fingerprint, { appType: "", meta: undefined, listLimit: 0 });
    await core.store.suspendPeer(fingerprint, "gone", core.clock.now + GRACE_MS);
    const next = core.connect();
    const refused = await core.request(next, "register", { payload: { public_key: "key-proven", resume_token: token } });
    expect(errorCode(refused)).toBe(409);
    expect(await core.store.resolvePeer(fingerprint)).toMatchObject({ suspended: true });
    expect(watcher.connection.of("peer_left")).toEqual([]);
    expect(next.connection.rooms.has(`fp:${fingerprint}`)).toBe(false);
  });
});

describe("resume_grace 0", () => {
  it("gives no token and departs a dropped peer at once, as before", async () => {
    const core = new CoreHarness({ config: { resume_grace: 0 } });
    const partner = await core.peer("key-p", "lobby");
    const x = await core.peer("key-x", "lobby");
    expect(x.connection.of("registered")[0]?.body["payload"] ?? x.connection.received[0]?.body["payload"]).not.toHaveProperty("resume_token");
    await core.hub.close(x.session, DROPPED);
    expect(partner.connection.of("peer_left").map((message) => message.body)).toEqual([{ from: x.fingerprint, namespace: "lobby" }]);
  });
});

describe("dialect identities", () => {
  it("are never suspended: they depart at once", async () => {
    const core = new CoreHarness();
    const partner = await core.peer("key-p", "lobby");
    const dialect = core.connect();
    const reply = await core.submit(dialect, { type: "register", payload: { publicKey: "pigeon:abc", alias: undefined, meta: undefined, identity: "pigeon:abc" } });
    expect(reply.body["payload"]).not.toHaveProperty("resume_token");
    await core.submit(dialect, { type: "join", payload: { namespace: "lobby", appType: "", meta: undefined } });
    await core.hub.close(dialect.session, DROPPED);
    expect(partner.connection.of("peer_left").map((message) => message.body["from"])).toEqual(["pigeon:abc"]);
  });
});
