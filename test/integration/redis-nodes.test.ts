import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { joinAtOnce } from "../helpers/join-race.ts";
import { sha256, type TestPeer, type Transport } from "../helpers/peers.ts";
import { startRedisCluster } from "../helpers/redis-cluster.ts";
import { deploymentWorkers, discover, isType, nodeIndexOf, type NodesRedis, PeerPool, settled, startNodes, unique } from "../helpers/redis-nodes.ts";
import { startRedisServer } from "../helpers/redis-server.ts";
import { getJson, type ServerProcess } from "../helpers/server-process.ts";
import { waitFor } from "../helpers/wait.ts";

/*
 * Three real server processes sharing one Redis (PEER_BROKER=redis, sharded adapter): A and B run
 * one process each, C runs two cluster workers. The whole suite runs twice: on one private
 * redis-server, and on a private 3-master Redis Cluster (redis_mode cluster), where the state is
 * on one master and the adapter's sharded channels are spread over all three. Every peer is
 * connected straight to the port of the node it is meant to live on, so "across nodes" is by
 * construction (and checked once through /stats). raw-ws and Socket.IO peers are mixed throughout.
 */

const offer = (n: number): Record<string, unknown> => ({ signal_type: "offer", sdp: `v=0 ${n}`, nested: { list: [1, "two", null] } });

describe.each(["single", "cluster"] as const)("nodes on Redis %s", (mode) => {
  let redis: NodesRedis | undefined;
  let nodes: ServerProcess[] = [];
  let A: ServerProcess;
  let B: ServerProcess;
  let C: ServerProcess;
  const pool = new PeerPool();

  beforeAll(async () => {
    redis = mode === "single" ? await startRedisServer() : await startRedisCluster();
    // A closed peer departs at once here (resume_grace 0): resume has its own tests (resume.test.ts).
    const config = { resume_grace: 0 };
    nodes = await startNodes(redis, [{ adapter: "sharded", config }, { adapter: "sharded", config }, { workers: 2, adapter: "sharded", config }]);
    [A, B, C] = nodes as [ServerProcess, ServerProcess, ServerProcess];
  });
  afterAll(async () => {
    pool.closeAll();
    await Promise.all(nodes.map((node) => node.stop()));
    await redis?.stop();
  });

  describe("peers on different nodes share one world", () => {
    it("the deployment lists every worker of every node, and peers live where they connected", async () => {
      const [a, b, c] = [await pool.on(A, "ws"), await pool.on(B, "sio"), await pool.on(C, "ws")];
      const everyone = await deploymentWorkers(B);
      expect(everyone).toHaveLength(4); // A, B and C's two workers
      expect([await nodeIndexOf(nodes, a.fingerprint, C), await nodeIndexOf(nodes, b.fingerprint, A), await nodeIndexOf(nodes, c.fingerprint, B)]).toEqual([0, 1, 2]);
      const { body } = await getJson(`${A.http}/stats`);
      expect(body["connections"]).toMatchObject({ ws: expect.any(Number) as number, "socket.io": expect.any(Number) as number });
      expect(body["total_peers"]).toBeGreaterThanOrEqual(3);
    });

    it("peers joining one namespace and one room at the same moment on different nodes learn of each other exactly once", async () => {
      const ns = unique("race-ns");
      const spread = [A, B, C];
      const peers: TestPeer[] = [];
      for (let i = 0; i < 24; i++) peers.push(await pool.on(spread[i % 3] as ServerProcess, i % 2 === 0 ? "ws" : "sio"));
      for (const outcome of [
        await joinAtOnce(peers, ns),
        await (async () => {
          const room = unique("race-room");
          const owner = await pool.on(A, "sio");
          expect((await owner.request("create_room", { payload: { room_id: room, max_size: 30 } }, ["room_created"])).type).toBe("room_created");
          return joinAtOnce(peers, room, (peer) => peer.request("join_room", { payload: { room_id: room } }, ["peer_list"]));
        })(),
      ]) {
        expect(outcome.missing.flat()).toEqual([]);
        expect(outcome.announcedTwice.flat()).toEqual([]);
        expect(outcome.repeated.flat()).toEqual([]);
      }
    });

    it("join: peer_list lists members from all nodes, peer_joined reaches every node, discover totals agree, leave and disconnect give peer_left everywhere", async () => {
      const ns = unique("nodes-ns");
      const a = await pool.on(A, "ws");
      const b = await pool.on(B, "sio");
      const c = await pool.on(C, "ws");
      const d = await pool.on(C, "sio");
      const listA = await a.join(ns);
      expect(listA.payload?.["total"]).toBe(1);
      const listB = await b.join(ns, { app_type: "game" });
      expect(listB.payload?.["total"]).toBe(2);
      expect(await a.next(isType("peer_joined", b.fingerprint, ns))).toMatchObject({ payload: { fingerprint: b.fingerprint, alias: b.alias, app_type: "game" } });
      await c.join(ns);
      const listD = await d.join(ns);
      expect(listD.payload?.["total"]).toBe(4);
      // Oldest first, members of all three nodes.
      expect((listD.payload?.["peers"] as { fingerprint: string }[]).map((peer) => peer.fingerprint)).toEqual([a.fingerprint, b.fingerprint, c.fingerprint, d.fingerprint]);
      for (const member of [a, b, c]) expect(await member.next(isType("peer_joined", d.fingerprint, ns))).toMatchObject({ payload: { fingerprint: d.fingerprint } });
      expect(await d.nothing(isType("peer_joined", d.fingerprint), 200)).toBe(true);

      // Every node counts the same members; limit pages across nodes.
      for (const member of [a, b, c, d]) expect((await discover(member, ns)).total).toBe(4);
      const page = await discover(b, ns, 2);
      expect(page).toMatchObject({ total: 4, fingerprints: [a.fingerprint, b.fingerprint] });
      const { body } = await getJson(`${C.http}/stats`);
      expect((body["namespaces"] as Record<string, number>)[ns]).toBe(4);

      // leave on B: A and C hear it; the leaver does not.
      b.send("leave", { payload: { namespace: ns } });
      for (const member of [a, c, d]) expect(await member.next(isType("peer_left", b.fingerprint, ns))).toBeDefined();
      expect(await b.nothing("peer_left", 200)).toBe(true);
      expect((await discover(a, ns)).total).toBe(3);

      // disconnect on C: A and C's other peer hear it.
      c.close();
      for (const member of [a, d]) expect(await member.next(isType("peer_left", c.fingerprint, ns))).toBeDefined();
      expect(await discover(d, ns)).toMatchObject({ total: 2, fingerprints: [a.fingerprint, d.fingerprint] });
    });

    describe.each<[Transport, Transport]>([
      ["ws", "sio"],
      ["sio", "ws"],
      ["ws", "ws"],
      ["sio", "sio"],
    ])("signal and relay, %s on A -> %s on B and C", (from, to) => {
      it("deliver by fingerprint and by alias, payload untouched, each way", async () => {
        const ns = unique(`sig-${from}-${to}`);
        const a = await pool.on(A, from, { namespace: ns });
        const b = await pool.on(B, to, { namespace: ns });
        const c = await pool.on(C, to, { namespace: ns });
        a.send("signal", { to: b.fingerprint, payload: offer(1) });
        const got = await b.next("signal");
        expect(got).toMatchObject({ from: a.fingerprint, to: b.fingerprint, payload: offer(1) });
        expect(typeof got.ts).toBe("number");
        a.send("relay", { to: c.alias, payload: { action: "move", x: 1.5 } });
        expect(await c.next("relay")).toMatchObject({ from: a.fingerprint, to: c.fingerprint, payload: { action: "move", x: 1.5 } });
        c.send("signal", { to: a.alias, payload: offer(2) });
        expect(await a.next("signal")).toMatchObject({ from: c.fingerprint, to: a.fingerprint, payload: offer(2) });
        b.send("relay", { to: c.fingerprint, payload: { hop: "B->C" } });
        expect(await c.next("relay")).toMatchObject({ from: b.fingerprint, to: c.fingerprint, payload: { hop: "B->C" } });
        // Nothing leaks to the peer that was not addressed.
        expect(await b.nothing("relay", 200)).toBe(true);
      });
    });

    it("signal/relay refuse across nodes: no shared namespace 403, unknown fingerprint or alias 404, yourself 400", async () => {
      const ns = unique("sig-refuse");
      const a = await pool.on(A, "sio", { namespace: ns });
      const b = await pool.on(B, "ws", { namespace: unique("elsewhere") });
      const c = await pool.on(C, "ws", { namespace: ns });
      expect((await a.request("signal", { to: b.fingerprint, payload: offer(3) }, ["ok"])).payload).toMatchObject({ code: 403, ref: "signal" });
      expect((await b.request("relay", { to: a.alias, payload: { x: 1 } }, ["ok"])).payload).toMatchObject({ code: 403, ref: "relay" });
      expect((await c.request("signal", { to: b.alias, payload: offer(3) }, ["ok"])).payload).toMatchObject({ code: 403 });
      expect(await b.nothing("signal", 200)).toBe(true);
      expect((await a.request("signal", { to: sha256("nobody"), payload: offer(3) }, ["ok"])).payload).toMatchObject({ code: 404 });
      expect((await c.request("relay", { to: "no-such-alias", payload: {} }, ["ok"])).payload).toMatchObject({ code: 404 });
      expect((await c.request("signal", { to: c.alias, payload: offer(3) }, ["ok"])).payload).toMatchObject({ code: 400 });
      // Sharing a namespace later (B joins on its node) opens the way.
      await b.join(ns);
      await a.next(isType("peer_joined", b.fingerprint, ns));
      a.send("signal", { to: b.fingerprint, payload: offer(4) });
      expect(await b.next("signal")).toMatchObject({ from: a.fingerprint, payload: offer(4) });
    });

    it("broadcast reaches members on every node except the sender and the excluded; unknown namespace 404, non-member 403", async () => {
      const ns = unique("bcast");
      const a = await pool.on(A, "ws", { namespace: ns });
      const b = await pool.on(B, "sio", { namespace: ns });
      const c = await pool.on(C, "ws", { namespace: ns });
      const d = await pool.on(C, "sio", { namespace: ns });
      const outsider = await pool.on(B, "ws", { namespace: unique("other") });
      a.send("broadcast", { payload: { namespace: ns, data: { round: 1 }, exclude: [c.fingerprint] } });
      for (const member of [b, d]) {
        expect(await member.next("broadcast")).toMatchObject({ type: "broadcast", from: a.fingerprint, namespace: ns, payload: { namespace: ns, data: { round: 1 } } });
      }
      expect(await c.nothing("broadcast", 300)).toBe(true);
      expect(await a.nothing("broadcast", 0)).toBe(true);
      expect(await outsider.nothing("broadcast", 0)).toBe(true);
      d.send("broadcast", { payload: { namespace: ns, data: "from C", exclude: [a.fingerprint, b.fingerprint] } });
      expect(await c.next("broadcast")).toMatchObject({ from: d.fingerprint, payload: { data: "from C" } });
      expect(await a.nothing("broadcast", 300)).toBe(true);
      expect(await b.nothing("broadcast", 0)).toBe(true);
      expect((await outsider.request("broadcast", { payload: { namespace: ns, data: 1 } }, ["ok"])).payload).toMatchObject({ code: 403, ref: "broadcast" });
      expect((await outsider.request("broadcast", { payload: { namespace: unique("nowhere"), data: 1 } }, ["ok"])).payload).toMatchObject({ code: 404 });
    });

    it("metadata set on one node shows in peer lists read on the others", async () => {
      const ns = unique("meta");
      const a = await pool.on(A, "ws", { namespace: ns, meta: { v: 1 } });
      const b = await pool.on(B, "sio", { namespace: ns });
      a.send("metadata", { payload: { meta: { status: "busy", v: null } } });
      await settled(a);
      const seen = await b.request("discover", { payload: { namespace: ns } }, ["peer_list"]);
      const entry = (seen.payload?.["peers"] as { fingerprint: string; meta: unknown }[]).find((peer) => peer.fingerprint === a.fingerprint);
      expect(entry?.meta).toEqual({ status: "busy" });
      // A later joiner on C gets it in its peer_list, and A hears C's meta in peer_joined.
      const c = await pool.on(C, "ws", { meta: { role: "host" } });
      const list = await c.join(ns, { app_type: "viewer" });
      expect((list.payload?.["peers"] as { fingerprint: string; meta: unknown }[]).find((peer) => peer.fingerprint === a.fingerprint)?.meta).toEqual({ status: "busy" });
      expect(await a.next(isType("peer_joined", c.fingerprint, ns))).toMatchObject({ payload: { app_type: "viewer", meta: { role: "host" } } });
    });

    it("aliases are unique across nodes (409), and a released alias can be taken on another node", async () => {
      const alias = unique("nodes_alias").replace(/-/g, "_");
      const a = await pool.on(A, "ws", { alias });
      expect(a.alias).toBe(alias);
      for (const [node, transport, otherAlias] of [
        [B, "sio", `${alias}_b`],
        [C, "ws", `${alias}_c`],
      ] as const) {
        const other = await pool.connect(node, transport);
        const reply = await other.register({ alias });
        expect(reply.payload).toMatchObject({ code: 409, ref: "register" });
        // The connection stays usable: it can register with another alias.
        expect((await other.register({ alias: otherAlias })).type).toBe("registered");
      }
      a.close();
      await a.closed;
      const taken = await waitFor(
        async () => {
          const candidate = await pool.connect(B, "sio");
          const reply = await candidate.register({ alias });
          if (reply.type !== "registered") candidate.close();
          return reply.type;
        },
        (type) => type === "registered",
        { timeoutMs: 5_000, intervalMs: 100, what: `alias ${alias} to be free again on another node` },
      );
      expect(taken).toBe("registered");
    });
  });

  describe("rooms across nodes", () => {
    it("create on A, join from B and C, room_info anywhere, full 429, duplicate id 409 from another node", async () => {
      const roomId = unique("room3");
      const owner = await pool.on(A, "ws");
      const created = await owner.request("create_room", { payload: { room_id: roomId, max_size: 3 } }, ["room_created"]);
      expect(created).toMatchObject({ type: "room_created", payload: { room_id: roomId, max_size: 3, owner: owner.fingerprint } });
      const b = await pool.on(B, "sio");
      const listB = await b.request("join_room", { payload: { room_id: roomId } }, ["peer_list"]);
      expect(listB.payload).toMatchObject({ namespace: roomId, total: 2 });
      expect(await owner.next(isType("peer_joined", b.fingerprint, roomId))).toBeDefined();
      const c = await pool.on(C, "ws");
      const listC = await c.request("join_room", { payload: { room_id: roomId } }, ["peer_list"]);
      expect((listC.payload?.["peers"] as { fingerprint: string }[]).map((peer) => peer.fingerprint)).toEqual([owner.fingerprint, b.fingerprint, c.fingerprint]);
      for (const member of [owner, b]) expect(await member.next(isType("peer_joined", c.fingerprint, roomId))).toBeDefined();

      // room_info from a non-member on another node.
      const stranger = await pool.on(C, "sio");
      expect(await stranger.request("room_info", { payload: { room_id: roomId } }, ["room_info"])).toMatchObject({
        type: "room_info",
        payload: { room_id: roomId, peer_count: 3, max_size: 3, owner: owner.fingerprint },
      });
      expect((await stranger.request("join_room", { payload: { room_id: roomId } }, ["peer_list"])).payload).toMatchObject({ code: 429, ref: "join_room" });
      expect((await stranger.request("discover", { payload: { namespace: roomId } }, ["peer_list"])).payload).toMatchObject({ code: 403 });
      expect((await stranger.request("join", { payload: { namespace: roomId } }, ["peer_list"])).payload).toMatchObject({ code: 403 });
      // Same id from another node: 409, as is a room named like a namespace someone joined on another node.
      const rival = await pool.on(B, "ws");
      expect((await rival.request("create_room", { payload: { room_id: roomId } }, ["room_created"])).payload).toMatchObject({ code: 409, ref: "create_room" });
      const ns = unique("taken-ns");
      await pool.on(C, "sio", { namespace: ns });
      expect((await owner.request("create_room", { payload: { room_id: ns } }, ["room_created"])).payload).toMatchObject({ code: 409 });
      // Rooms are not public namespaces.
      const { body } = await getJson(`${B.http}/stats`);
      expect(Object.keys(body["namespaces"] as Record<string, number>)).not.toContain(roomId);
      // A room member's broadcast reaches the members on the other nodes.
      c.send("broadcast", { payload: { namespace: roomId, data: "hello room" } });
      for (const member of [owner, b]) expect(await member.next("broadcast")).toMatchObject({ from: c.fingerprint, namespace: roomId, payload: { data: "hello room" } });
      expect(await stranger.nothing("broadcast", 200)).toBe(true);
    });

    it("max_size 2 across nodes: the third joiner on another node gets 429; room_info of an unknown room 404", async () => {
      const roomId = unique("room2");
      const owner = await pool.on(B, "sio");
      expect((await owner.request("create_room", { payload: { room_id: roomId, max_size: 2 } }, ["room_created"])).type).toBe("room_created");
      const second = await pool.on(C, "ws");
      expect((await second.request("join_room", { payload: { room_id: roomId } }, ["peer_list"])).payload?.["total"]).toBe(2);
      const third = await pool.on(A, "sio");
      expect((await third.request("join_room", { payload: { room_id: roomId } }, ["peer_list"])).payload).toMatchObject({ code: 429 });
      expect((await third.request("room_info", { payload: { room_id: unique("ghost") } }, ["room_info"])).payload).toMatchObject({ code: 404 });
      expect((await third.request("join_room", { payload: { room_id: unique("ghost") } }, ["peer_list"])).payload).toMatchObject({ code: 404 });
      // When a member on C leaves, the peer on A fits.
      second.send("leave", { payload: { namespace: roomId } });
      expect(await owner.next(isType("peer_left", second.fingerprint, roomId))).toBeDefined();
      expect((await third.request("join_room", { payload: { room_id: roomId } }, ["peer_list"])).payload?.["total"]).toBe(2);
    });

    it("kick of a member on another node: it gets kick, the others peer_left, and it can no longer reach room-only members", async () => {
      const roomId = unique("kick");
      const owner = await pool.on(A, "ws");
      expect((await owner.request("create_room", { payload: { room_id: roomId } }, ["room_created"])).type).toBe("room_created");
      const target = await pool.on(B, "sio");
      const other = await pool.on(C, "ws");
      await target.request("join_room", { payload: { room_id: roomId } }, ["peer_list"]);
      await other.request("join_room", { payload: { room_id: roomId } }, ["peer_list"]);
      // Room-only members can signal each other across nodes.
      target.send("signal", { to: other.fingerprint, payload: offer(5) });
      expect(await other.next("signal")).toMatchObject({ from: target.fingerprint });
      // Only the owner may kick (403), a non-member 404, itself 400.
      expect((await other.request("kick", { payload: { room_id: roomId, fingerprint: target.fingerprint } }, ["ok"])).payload).toMatchObject({ code: 403, ref: "kick" });
      expect((await owner.request("kick", { payload: { room_id: roomId, fingerprint: sha256("nobody") } }, ["ok"])).payload).toMatchObject({ code: 404 });
      expect((await owner.request("kick", { payload: { room_id: roomId, fingerprint: owner.fingerprint } }, ["ok"])).payload).toMatchObject({ code: 400 });

      owner.send("kick", { payload: { room_id: roomId, fingerprint: target.fingerprint } });
      expect(await target.next("kick")).toMatchObject({ from: owner.fingerprint, payload: { room_id: roomId, fingerprint: target.fingerprint } });
      for (const member of [owner, other]) expect(await member.next(isType("peer_left", target.fingerprint, roomId))).toBeDefined();
      expect(await target.nothing(isType("peer_left", target.fingerprint), 200)).toBe(true);
      expect((await target.request("signal", { to: other.fingerprint, payload: offer(6) }, ["ok"])).payload).toMatchObject({ code: 403 });
      expect((await other.request("signal", { to: target.alias, payload: offer(6) }, ["ok"])).payload).toMatchObject({ code: 403 });
      expect(await other.nothing("signal", 200)).toBe(true);
      // It no longer hears the room, and cannot speak in it.
      owner.send("broadcast", { payload: { namespace: roomId, data: "after kick" } });
      expect(await other.next("broadcast")).toMatchObject({ payload: { data: "after kick" } });
      expect(await target.nothing("broadcast", 300)).toBe(true);
      expect((await target.request("broadcast", { payload: { namespace: roomId, data: 1 } }, ["ok"])).payload).toMatchObject({ code: 403 });
      expect(await owner.request("room_info", { payload: { room_id: roomId } }, ["room_info"])).toMatchObject({ payload: { peer_count: 2 } });
    });

    it("the owner on A leaves: ownership passes to the earliest member on another node", async () => {
      const roomId = unique("handover");
      const owner = await pool.on(A, "sio");
      await owner.request("create_room", { payload: { room_id: roomId } }, ["room_created"]);
      const heir = await pool.on(C, "ws");
      const late = await pool.on(B, "ws");
      await heir.request("join_room", { payload: { room_id: roomId } }, ["peer_list"]);
      await late.request("join_room", { payload: { room_id: roomId } }, ["peer_list"]);
      owner.close();
      for (const member of [heir, late]) expect(await member.next(isType("peer_left", owner.fingerprint, roomId))).toBeDefined();
      expect(await late.request("room_info", { payload: { room_id: roomId } }, ["room_info"])).toMatchObject({ payload: { owner: heir.fingerprint, peer_count: 2 } });
      heir.send("kick", { payload: { room_id: roomId, fingerprint: late.fingerprint } });
      expect(await late.next("kick")).toMatchObject({ from: heir.fingerprint });
    });
  });

  describe("matchmaking across nodes", () => {
    it("a group of 3 with one member on each node: waiting, waiting, then all get matched with the same session", async () => {
      const ns = unique("match3");
      const criteria = { mode: "ranked", region: "eu", level: 3 };
      const a = await pool.on(A, "ws", { namespace: ns });
      const b = await pool.on(B, "sio", { namespace: ns });
      const c = await pool.on(C, "ws", { namespace: ns });
      const odd = await pool.on(C, "sio", { namespace: ns });
      // Same criteria in another key order still matches; a different value type does not.
      expect((await odd.request("match", { payload: { namespace: ns, group_size: 3, criteria: { ...criteria, level: "3" } } }, ["match", "matched"])).payload).toMatchObject({ status: "waiting" });
      expect((await a.request("match", { payload: { namespace: ns, group_size: 3, criteria } }, ["match", "matched"])).payload).toMatchObject({ status: "waiting", namespace: ns });
      expect((await b.request("match", { payload: { namespace: ns, group_size: 3, criteria: { level: 3, region: "eu", mode: "ranked" } } }, ["match", "matched"])).payload).toMatchObject({ status: "waiting" });
      const direct = await c.request("match", { payload: { namespace: ns, group_size: 3, criteria } }, ["match", "matched"]);
      expect(direct.type).toBe("matched");
      const events = [await a.next("matched"), await b.next("matched")];
      const sessionId = direct.payload?.["session_id"];
      expect(sessionId).toMatch(/^[0-9a-f]{32}$/);
      const order = [a.fingerprint, b.fingerprint, c.fingerprint];
      for (const event of [direct, ...events]) {
        expect(event.payload?.["session_id"]).toBe(sessionId);
        expect(event.payload?.["namespace"]).toBe(ns);
        expect((event.payload?.["peers"] as { fingerprint: string }[]).map((peer) => peer.fingerprint)).toEqual(order);
      }
      expect(await odd.nothing("matched", 200)).toBe(true);
      // The matched tickets are gone: cancelling is 404 on every node; the odd one is still waiting.
      expect((await a.request("match_cancel", { payload: { namespace: ns } }, ["match"])).payload).toMatchObject({ code: 404 });
      expect((await odd.request("match_cancel", { payload: { namespace: ns } }, ["match"])).payload).toMatchObject({ status: "cancelled", namespace: ns });
    });

    it("concurrent requests from three nodes form exactly one group of 2 and leave one waiting", async () => {
      const ns = unique("match-race");
      const peers = [await pool.on(A, "ws", { namespace: ns }), await pool.on(B, "ws", { namespace: ns }), await pool.on(C, "sio", { namespace: ns })];
      const replies = await Promise.all(peers.map((peer) => peer.request("match", { payload: { namespace: ns, group_size: 2, criteria: {} } }, ["match", "matched"])));
      const waiting = replies.filter((reply) => reply.type === "match");
      const matched = replies.filter((reply) => reply.type === "matched");
      for (const reply of waiting) expect(reply.payload?.["status"]).toBe("waiting");
      expect({ waiting: waiting.length, matched: matched.length }).toEqual({ waiting: 2, matched: 1 });
      const group = (matched[0]?.payload?.["peers"] as { fingerprint: string }[]).map((peer) => peer.fingerprint);
      expect(group).toHaveLength(2);
      const matcher = peers[replies.findIndex((reply) => reply.type === "matched")] as TestPeer;
      expect(group).toContain(matcher.fingerprint);
      const partner = peers.find((peer) => group.includes(peer.fingerprint) && peer !== matcher) as TestPeer;
      expect((await partner.next("matched")).payload?.["session_id"]).toBe(matched[0]?.payload?.["session_id"]);
      const leftOut = peers.find((peer) => !group.includes(peer.fingerprint)) as TestPeer;
      expect(await leftOut.nothing("matched", 200)).toBe(true);
    });
  });

  describe.each<[Transport, Transport]>([
    ["ws", "sio"],
    ["sio", "ws"],
  ])("reconnect with the same key on another node (old %s on A, new %s on C)", (oldTransport, newTransport) => {
    it("replaces the old connection: 409 notice with close_code 4001, closed, one peer_left, then reachable on the new node", async () => {
      const ns = unique("reconnect");
      const watcher = await pool.on(B, "ws", { namespace: ns });
      const old = await pool.on(A, oldTransport, { namespace: ns });
      await watcher.next(isType("peer_joined", old.fingerprint, ns));
      const replacement = await pool.on(C, newTransport, { publicKey: old.publicKey });
      expect(replacement.fingerprint).toBe(old.fingerprint);
      const notice = await old.next("error");
      expect(notice.payload).toMatchObject({ code: 409, close_code: 4001 });
      const closed = await old.closed;
      if (oldTransport === "ws") expect(closed.code).toBe(4001);
      else expect(closed.code).toBe("io server disconnect");
      expect(await watcher.next(isType("peer_left", old.fingerprint, ns))).toBeDefined();
      expect(await watcher.nothing(isType("peer_left", old.fingerprint), 500)).toBe(true);
      expect(await replacement.nothing("error", 0)).toBe(true);
      expect((await discover(watcher, ns)).total).toBe(1);
      expect(await nodeIndexOf(nodes, old.fingerprint, B)).toBe(2);
      // The new connection joins and is reached on C.
      await replacement.join(ns);
      expect(await watcher.next(isType("peer_joined", old.fingerprint, ns))).toBeDefined();
      watcher.send("signal", { to: old.fingerprint, payload: offer(7) });
      expect(await replacement.next("signal")).toMatchObject({ from: watcher.fingerprint, to: old.fingerprint });
    });
  });
});
