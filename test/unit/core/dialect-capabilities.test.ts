import { describe, expect, it } from "vitest";
import { CoreHarness, errorCode, type Peer } from "../../helpers/core-harness.ts";

/** What the dialect bindings use of the core: identities, one scope at a time, pairing into a room. */

async function dialectPeer(core: CoreHarness, identity: string, alias?: string): Promise<Peer> {
  const opened = core.connect();
  const reply = await core.submit(opened, { type: "register", payload: { publicKey: "", alias, meta: {}, identity } });
  if (reply.type !== "registered") throw new Error(`register failed: ${JSON.stringify(reply)}`);
  const { fingerprint, alias: given } = reply.body["payload"] as { fingerprint: string; alias: string };
  return { ...opened, fingerprint, alias: given };
}

const join = (namespace: string, extra: { exclusive?: boolean; listLimit?: number } = {}) =>
  ({ type: "join", payload: { namespace, appType: "", meta: undefined, ...extra } }) as const;

describe("dialect identities", () => {
  it("an identity is the fingerprint as is and, without an alias, its own alias", async () => {
    const core = new CoreHarness();
    const peer = await dialectPeer(core, "pigeon:" + "ab".repeat(20));
    expect(peer.fingerprint).toBe("pigeon:" + "ab".repeat(20));
    expect(peer.alias).toBe(peer.fingerprint);
  });

  it("the same identity again replaces the first connection (4001); a requested alias held by another identity is 409", async () => {
    const core = new CoreHarness();
    const first = await dialectPeer(core, "pigeon:1", undefined);
    await dialectPeer(core, "pigeon:1", undefined);
    expect(first.connection.closeCode).toBe(4001);
    await dialectPeer(core, "p2p:a", "p2p/alice");
    const opened = core.connect();
    const reply = await core.submit(opened, { type: "register", payload: { publicKey: "", alias: "p2p/alice", meta: {}, identity: "p2p:b" } });
    expect(errorCode(reply)).toBe(409);
  });
});

describe("exclusive joins", () => {
  it("an exclusive join leaves every other scope first: their members get peer_left, the new scope's get peer_joined", async () => {
    const core = new CoreHarness();
    const a = await dialectPeer(core, "pigeon:a");
    const b = await dialectPeer(core, "pigeon:b");
    const c = await dialectPeer(core, "pigeon:c");
    await core.submit(b, join("pigeon/one"));
    await core.submit(c, join("pigeon/two"));
    await core.submit(a, join("pigeon/one", { exclusive: true }));
    const reply = await core.submit(a, join("pigeon/two", { exclusive: true }));
    expect(reply.type).toBe("peer_list");
    expect(b.connection.of("peer_left")).toEqual([{ type: "peer_left", body: { from: a.fingerprint, namespace: "pigeon/one" } }]);
    expect(c.connection.of("peer_joined")).toHaveLength(1);
    expect(await core.store.isMember("pigeon/one", a.fingerprint)).toBe(false);
    expect(await core.store.isMember("pigeon/two", a.fingerprint)).toBe(true);
    expect(a.connection.rooms.has("ns:pigeon/one")).toBe(false);
  });

  it("a join without exclusive keeps the other scopes; listLimit bounds the reply's list", async () => {
    const core = new CoreHarness();
    const members: Peer[] = [];
    for (let i = 0; i < 4; i++) members.push(await dialectPeer(core, `pigeon:m${i}`));
    for (const member of members) await core.submit(member, join("pigeon/big"));
    const a = await dialectPeer(core, "pigeon:a");
    await core.submit(a, join("pigeon/other"));
    const reply = await core.submit(a, join("pigeon/big", { listLimit: 2 }));
    expect((reply.body["payload"] as { peers: unknown[]; total: number }).peers).toHaveLength(2);
    expect((reply.body["payload"] as { total: number }).total).toBe(5);
    expect(await core.store.isMember("pigeon/other", a.fingerprint)).toBe(true);
  });
});

describe("pairing into a room", () => {
  const lobby = (avoid: string[] = []) =>
    ({ type: "match", payload: { namespace: "randomchat/lobby", groupSize: 2, criteria: {}, open: true, avoid, groupRoom: "randomchat/{session}" } }) as const;

  it("an open queue needs no membership; a formed pair shares a room named by the session: they can signal and hear each other leave", async () => {
    const core = new CoreHarness();
    const a = await dialectPeer(core, "randomchat:a");
    const b = await dialectPeer(core, "randomchat:b");
    expect((await core.submit(a, lobby())).body).toMatchObject({ payload: { status: "waiting" } });
    const matched = await core.submit(b, lobby());
    expect(matched.type).toBe("matched");
    const sessionId = (matched.body["payload"] as { session_id: string }).session_id;
    const room = `randomchat/${sessionId}`;
    expect(a.connection.of("matched")).toHaveLength(1);
    expect(a.connection.rooms.has(`ns:${room}`)).toBe(true);
    expect(b.connection.rooms.has(`ns:${room}`)).toBe(true);
    expect(await core.store.sharesScope(a.fingerprint, b.fingerprint)).toBe(true);

    expect((await core.submit(b, { type: "signal", to: a.fingerprint, payload: { t: "offer" }, payloadJson: undefined })).type).toBe("ok");
    expect(a.connection.of("signal")).toHaveLength(1);

    await core.submit(b, { type: "leave", payload: { namespace: room } });
    expect(a.connection.of("peer_left")).toEqual([{ type: "peer_left", body: { from: b.fingerprint, namespace: room } }]);
    expect(errorCode(await core.submit(b, { type: "signal", to: a.fingerprint, payload: { t: "offer" }, payloadJson: undefined }))).toBe(403);
  });

  it("two who avoid each other wait; a third is paired with the oldest compatible", async () => {
    const core = new CoreHarness();
    const a = await dialectPeer(core, "randomchat:a");
    const b = await dialectPeer(core, "randomchat:b");
    const c = await dialectPeer(core, "randomchat:c");
    expect((await core.submit(a, lobby([b.fingerprint]))).type).toBe("match");
    expect((await core.submit(b, lobby([a.fingerprint]))).type).toBe("match");
    const matched = await core.submit(c, lobby());
    expect((matched.body["payload"] as { peers: { fingerprint: string }[] }).peers.map((peer) => peer.fingerprint)).toEqual([a.fingerprint, c.fingerprint]);
    expect(b.connection.of("matched")).toEqual([]);
  });
});
