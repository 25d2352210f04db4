import { randomUUID } from "node:crypto";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { workerOf, workers } from "../helpers/cluster.ts";
import { closeAll, connectSio, connectWs, TRANSPORTS, type Envelope, type TestPeer, type Transport } from "../helpers/peers.ts";
import { startNodes } from "../helpers/redis-nodes.ts";
import { startRedisServer, type RedisServer } from "../helpers/redis-server.ts";
import { startServer, type ServerProcess } from "../helpers/server-process.ts";

/**
 * Per-peer caps (max_scopes_per_peer, max_rooms_per_peer, max_tickets_per_peer), the criteria
 * bound (max_criteria_bytes) and the kick ban (kick_ban), over both transports, on one process, a
 * 2-worker cluster and two nodes sharing one Redis. The caps are small so that each is reached in
 * a few requests; the peer under test and the peers it deals with sit on different processes
 * wherever there are two, so that what changes its counts (a kick, a match completed by someone
 * else) and the requests it makes next are handled by different processes.
 */

const CAPS = { max_scopes_per_peer: 4, max_rooms_per_peer: 2, max_tickets_per_peer: 2, max_criteria_bytes: 64, kick_ban: "1s" };
const KICK_BAN_MS = 1_000;

const unique = (label: string): string => `${label}-${randomUUID().slice(0, 8)}`;
const other = (transport: Transport): Transport => (transport === "ws" ? "sio" : "ws");
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A deployment under test: peers are placed on process (or worker, or node) 0 or 1. */
interface Topology {
  readonly name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** A connected, registered peer on slot 0 or 1, with `publicKey` when given (a takeover of that key). */
  peer(transport: Transport, slot: 0 | 1, publicKey?: string): Promise<TestPeer>;
}

/** Every peer a test opened, closed after it. */
const open: TestPeer[] = [];

async function registered(server: ServerProcess, transport: Transport, publicKey?: string): Promise<TestPeer> {
  const peer = transport === "ws" ? await connectWs(server.ws) : await connectSio(server.http);
  open.push(peer);
  const reply = await peer.register({ publicKey });
  expect(reply.type, JSON.stringify(reply)).toBe("registered");
  return peer;
}

function singleProcess(): Topology {
  let server: ServerProcess | undefined;
  return {
    name: "one process",
    async start() {
      server = await startServer({ config: CAPS });
    },
    async stop() {
      await server?.stop();
    },
    peer: (transport, _slot, publicKey) => registered(server as ServerProcess, transport, publicKey),
  };
}

function twoWorkers(): Topology {
  let server: ServerProcess | undefined;
  let nodeIds: string[] = [];
  return {
    name: "2-worker cluster",
    async start() {
      server = await startServer({ config: CAPS, env: { PEER_WORKERS: "2" }, timeoutMs: 30_000 });
      nodeIds = (await workers(server)).map((worker) => worker.node_id).sort();
    },
    async stop() {
      await server?.stop();
    },
    async peer(transport, slot, publicKey) {
      const target = server as ServerProcess;
      // A reconnect of a given key lands where the router sends it: any worker will do for it.
      if (publicKey !== undefined) return registered(target, transport, publicKey);
      for (let attempt = 0; attempt < 16; attempt++) {
        const candidate = await registered(target, transport);
        if ((await workerOf(target, candidate.fingerprint)) === nodeIds[slot]) return candidate;
        candidate.close();
      }
      throw new Error(`could not place a ${transport} peer on worker ${slot}`);
    },
  };
}

function twoRedisNodes(): Topology {
  let redis: RedisServer | undefined;
  let nodes: ServerProcess[] = [];
  return {
    name: "2 Redis nodes",
    async start() {
      redis = await startRedisServer();
      nodes = await startNodes(redis, [{ config: CAPS }, { config: CAPS }]);
    },
    async stop() {
      await Promise.all(nodes.map((node) => node.stop()));
      await redis?.stop();
    },
    peer: (transport, slot, publicKey) => registered(nodes[slot] as ServerProcess, transport, publicKey),
  };
}

/** Sends a request and resolves with its direct reply, or its error. */
const ask = (peer: TestPeer, type: string, payload: Record<string, unknown>): Promise<Envelope> =>
  peer.request(type, { payload }, ["peer_list", "room_created", "room_info", "match", "matched", "ok"]);

async function expectReply(peer: TestPeer, type: string, payload: Record<string, unknown>, replyType: string): Promise<Envelope> {
  const reply = await ask(peer, type, payload);
  expect(reply.type, JSON.stringify(reply)).toBe(replyType);
  return reply;
}

async function expectError(peer: TestPeer, type: string, payload: Record<string, unknown>, code: number, message?: string): Promise<void> {
  const reply = await ask(peer, type, payload);
  expect(reply.type, JSON.stringify(reply)).toBe("error");
  expect(reply.payload).toMatchObject({ code, ref: type, ...(message === undefined ? {} : { message }) });
}

/** A request without a direct reply, then a ping: handled once the pong is back. */
async function sendSettled(peer: TestPeer, type: string, payload: Record<string, unknown>): Promise<void> {
  peer.send(type, { payload });
  expect((await peer.request("ping", {}, ["pong"])).type).toBe("pong");
}

const total = async (asker: TestPeer, namespace: string): Promise<unknown> => (await expectReply(asker, "discover", { namespace }, "peer_list")).payload?.["total"];

describe.each([singleProcess(), twoWorkers(), twoRedisNodes()])("per-peer caps and the kick ban: $name", (topology) => {
  beforeAll(() => topology.start(), 60_000);
  afterAll(() => topology.stop());
  afterEach(() => closeAll(open.splice(0)));

  describe.each(TRANSPORTS)("the peer under test over %s", (transport) => {
    it("max_scopes_per_peer counts namespaces and rooms: the 4th passes, the 5th gets 429 and changes nothing, a leave makes room", async () => {
      const peer = await topology.peer(transport, 0);
      const host = await topology.peer(other(transport), 1);
      const [room, spare] = [unique("room"), unique("room")];
      for (const roomId of [room, spare]) await expectReply(host, "create_room", { room_id: roomId }, "room_created");
      const names = [unique("ns"), unique("ns"), unique("ns")];
      for (const namespace of names) await expectReply(peer, "join", { namespace }, "peer_list");
      await expectReply(peer, "join_room", { room_id: room }, "peer_list");

      const extra = unique("ns");
      await expectError(peer, "join", { namespace: extra }, 429, "max_scopes_per_peer (4) reached");
      await expectError(peer, "join_room", { room_id: spare }, 429, "max_scopes_per_peer (4) reached");
      await expectError(peer, "create_room", { room_id: unique("room") }, 429);
      expect(await total(host, extra)).toBe(0);
      expect((await expectReply(host, "room_info", { room_id: spare }, "room_info")).payload).toMatchObject({ peer_count: 1 });
      // A scope it is in already passes.
      await expectReply(peer, "join", { namespace: names[0] }, "peer_list");

      await sendSettled(peer, "leave", { namespace: names[1] });
      await expectReply(peer, "join", { namespace: extra }, "peer_list");
      expect(await total(host, extra)).toBe(1);
      await expectError(peer, "join_room", { room_id: spare }, 429);
    });

    it("max_rooms_per_peer: the 2nd room passes, the 3rd gets 429 and is not created, leaving one makes room", async () => {
      const peer = await topology.peer(transport, 0);
      const asker = await topology.peer(other(transport), 1);
      const [first, second, third] = [unique("room"), unique("room"), unique("room")];
      await expectReply(peer, "create_room", { room_id: first }, "room_created");
      await expectReply(peer, "create_room", { room_id: second }, "room_created");
      await expectError(peer, "create_room", { room_id: third }, 429, "max_rooms_per_peer (2) reached");
      await expectError(asker, "room_info", { room_id: third }, 404);
      await sendSettled(peer, "leave", { namespace: first });
      expect((await expectReply(peer, "create_room", { room_id: third }, "room_created")).payload).toMatchObject({ owner: peer.fingerprint });
    });

    it("max_tickets_per_peer: the 2nd waiting ticket passes, the 3rd gets 429; a match completed by a peer elsewhere frees a slot", async () => {
      const peer = await topology.peer(transport, 0);
      const partner = await topology.peer(other(transport), 1);
      const [first, second, third] = [unique("ns"), unique("ns"), unique("ns")];
      for (const namespace of [first, second, third]) {
        await expectReply(peer, "join", { namespace }, "peer_list");
        await expectReply(partner, "join", { namespace }, "peer_list");
      }
      const ticket = (namespace: string) => ({ namespace, group_size: 2, criteria: { mode: "duel" } });
      await expectReply(peer, "match", ticket(first), "match");
      await expectReply(peer, "match", ticket(second), "match");
      await expectError(peer, "match", ticket(third), 429, "max_tickets_per_peer (2) reached");
      // Nothing was queued: there is no ticket to cancel, and the partner's ticket there waits.
      await expectError(peer, "match_cancel", { namespace: third }, 404);
      await expectReply(partner, "match", ticket(third), "match");
      await expectReply(partner, "match_cancel", { namespace: third }, "match");

      // The partner's request completes the peer's first ticket: one slot is free again.
      await expectReply(partner, "match", ticket(first), "matched");
      expect(await peer.next("matched")).toMatchObject({ payload: { namespace: first } });
      expect((await expectReply(peer, "match", ticket(third), "match")).payload).toMatchObject({ status: "waiting" });
      await expectError(peer, "match", ticket(first), 429);
    });

    it("criteria larger than max_criteria_bytes get 400 and queue nothing", async () => {
      const peer = await topology.peer(transport, 0);
      const partner = await topology.peer(other(transport), 1);
      const namespace = unique("ns");
      for (const member of [peer, partner]) await expectReply(member, "join", { namespace }, "peer_list");
      // {"mode":"…"} is 11 bytes around the value: 53 characters make 64 bytes, 54 make 65.
      const big = { mode: "x".repeat(54) };
      await expectError(peer, "match", { namespace, group_size: 2, criteria: big }, 400, "criteria larger than max_criteria_bytes (64)");
      await expectError(peer, "match_cancel", { namespace }, 404);
      // Had it been queued, this would complete its group.
      await expectReply(partner, "match", { namespace, group_size: 2, criteria: { mode: "x".repeat(53) } }, "match");
    });

    it("a kicked peer's join_room gets 403 on every process, also reconnected, until kick_ban has passed", async () => {
      const owner = await topology.peer(other(transport), 0);
      const target = await topology.peer(transport, 1);
      const roomId = unique("room");
      await expectReply(owner, "create_room", { room_id: roomId }, "room_created");
      await expectReply(target, "join_room", { room_id: roomId }, "peer_list");
      await sendSettled(owner, "kick", { room_id: roomId, fingerprint: target.fingerprint });
      // The server kicked before this (one machine, one clock): its ban ends by kickedAt + kick_ban.
      const kickedAt = Date.now();
      expect(await target.next("kick")).toMatchObject({ payload: { room_id: roomId } });

      // Refused where the target is (another process than the kick's), and again from a new connection with the same key on the kick's.
      await expectError(target, "join_room", { room_id: roomId }, 403, "kicked from this room; try again later");
      const back = await topology.peer(transport, 0, target.publicKey);
      expect(back.fingerprint).toBe(target.fingerprint);
      await expectError(back, "join_room", { room_id: roomId }, 403);
      expect((await expectReply(owner, "room_info", { room_id: roomId }, "room_info")).payload).toMatchObject({ peer_count: 1 });
      // The ban is on that peer and that room only.
      const bystander = await topology.peer(transport, 1);
      await expectReply(bystander, "join_room", { room_id: roomId }, "peer_list");

      await sleep(Math.max(0, kickedAt + KICK_BAN_MS + 10 - Date.now()));
      const list = await expectReply(back, "join_room", { room_id: roomId }, "peer_list");
      expect(list.payload).toMatchObject({ total: 3 });
    });
  });
});
