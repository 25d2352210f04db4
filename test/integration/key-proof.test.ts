import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { KEY_KINDS, makeKey, type KeyKind, type TestKey } from "../helpers/key-proof.ts";
import { closeAll, connect, sha256, TRANSPORT_PAIRS, type Envelope, type TestPeer, type Transport } from "../helpers/peers.ts";
import { startNodes, unique } from "../helpers/redis-nodes.ts";
import { startRedisServer } from "../helpers/redis-server.ts";
import { startServer, type ServerProcess } from "../helpers/server-process.ts";

/**
 * Proof of key possession at register, over /ws and Socket.IO, in one process, a 2-worker cluster
 * and 2 Redis nodes: challenge, sign, register with each accepted key and signature form; the
 * refusals (401) of wrong, replayed and foreign proofs; who may take over a fingerprint under
 * `optional` and `required`; `off`; and `verified` wherever peers are listed. (A nonce's 60 s
 * expiry is covered by the core's unit test, test/unit/core/challenges.test.ts, with a fake clock.)
 */

type Mode = "off" | "optional" | "required";

interface Deployment {
  /** Where peers connect: the first side on servers[0], the second on the last (the same process when there is one). */
  readonly servers: readonly ServerProcess[];
  stop(): Promise<void>;
}

interface Topology {
  name: string;
  start(mode: Mode): Promise<Deployment>;
}

const TOPOLOGIES: Topology[] = [
  {
    name: "one process",
    async start(mode) {
      const server = await startServer({ config: { key_proof: mode } });
      return { servers: [server], stop: async () => void (await server.stop()) };
    },
  },
  {
    name: "a cluster of 2 workers",
    async start(mode) {
      // Least-connections routing puts consecutive connections on different workers.
      const server = await startServer({ env: { PEER_WORKERS: "2" }, config: { key_proof: mode } });
      return { servers: [server], stop: async () => void (await server.stop()) };
    },
  },
  {
    name: "2 Redis nodes",
    async start(mode) {
      const redis = await startRedisServer();
      const servers = await startNodes(redis, [{ config: { key_proof: mode } }, { config: { key_proof: mode } }]);
      return {
        servers,
        stop: async () => {
          await Promise.all(servers.map((server) => server.stop()));
          await redis.stop();
        },
      };
    },
  },
];

/** One deployment for a describe block, and the peers each test opens, closed after it. */
function useDeployment(topology: Topology, mode: Mode) {
  let deployment: Deployment | undefined;
  let open: TestPeer[] = [];
  beforeAll(async () => {
    deployment = await topology.start(mode);
  }, 60_000);
  afterEach(() => {
    closeAll(open);
    open = [];
  });
  afterAll(async () => {
    await deployment?.stop();
  });
  const side = (index: 0 | 1): ServerProcess => {
    const servers = deployment?.servers ?? [];
    const server = index === 0 ? servers[0] : servers[servers.length - 1];
    if (server === undefined) throw new Error("the deployment is not running");
    return server;
  };
  return {
    /** A connected, unregistered peer over `transport`, on the first or the second side. */
    async connect(transport: Transport, index: 0 | 1 = 0): Promise<TestPeer> {
      const peer = await connect(side(index), transport);
      open.push(peer);
      return peer;
    },
  };
}

async function challenge(peer: TestPeer): Promise<string> {
  const reply = await peer.request("challenge", {}, ["challenge"]);
  expect(reply.type, JSON.stringify(reply)).toBe("challenge");
  const nonce = reply.payload?.["nonce"];
  expect(nonce).toMatch(/^[A-Za-z0-9_-]{43}$/);
  return nonce as string;
}

/** A register with `signature`; on success the peer knows its fingerprint and alias. */
async function registerWith(peer: TestPeer, key: TestKey, signature: string | undefined): Promise<Envelope> {
  const reply = await peer.request("register", { payload: { public_key: key.publicKey, signature } }, ["registered"]);
  if (reply.type === "registered") {
    peer.fingerprint = String(reply.payload?.["fingerprint"]);
    peer.alias = String(reply.payload?.["alias"]);
  }
  return reply;
}

/** challenge, then a register signed over its nonce. */
async function proven(peer: TestPeer, key: TestKey): Promise<Envelope> {
  const nonce = await challenge(peer);
  return registerWith(peer, key, await key.sign(nonce));
}

function expectRegistered(reply: Envelope, publicKey: string, verified: boolean): void {
  expect(reply.type, JSON.stringify(reply)).toBe("registered");
  expect(reply.payload).toMatchObject({ fingerprint: sha256(publicKey), verified });
}

function expectCode(reply: Envelope, code: number, ref: string): void {
  expect(reply.type, JSON.stringify(reply)).toBe("error");
  expect(reply.payload).toMatchObject({ code, ref });
}

const entry = (peer: TestPeer, verified: boolean) => expect.objectContaining({ fingerprint: peer.fingerprint, verified });
const peersOf = (message: Envelope): unknown[] => (message.payload?.["peers"] ?? []) as unknown[];
const joinedBy = (peer: TestPeer) => (message: Envelope) => message.type === "peer_joined" && message.from === peer.fingerprint;

describe.each(TOPOLOGIES)("proof of key possession in $name", (topology) => {
  describe("key_proof optional (the default)", () => {
    const deployment = useDeployment(topology, "optional");

    describe.each(TRANSPORT_PAIRS)("first side over %s, second over %s", (first, second) => {
      it.each(KEY_KINDS)("%s: challenge, sign, register: verified in registered, peer_list, peer_joined, rooms and matches", async (kind: KeyKind) => {
        const key = await makeKey(kind);
        const alice = await deployment.connect(first, 0);
        expectRegistered(await proven(alice, key), key.publicKey, true);
        const namespace = unique("kp");
        expect(peersOf(await alice.join(namespace))).toEqual([entry(alice, true)]);

        const bob = await deployment.connect(second, 1);
        const plain = await bob.register();
        expectRegistered(plain, bob.publicKey, false);
        expect(peersOf(await bob.join(namespace))).toEqual([entry(alice, true), entry(bob, false)]);
        expect((await alice.next(joinedBy(bob))).payload).toMatchObject({ fingerprint: bob.fingerprint, verified: false });

        const carol = await deployment.connect(second, 1);
        const carolKey = await makeKey(kind);
        expectRegistered(await proven(carol, carolKey), carolKey.publicKey, true);
        await carol.join(namespace);
        expect((await alice.next(joinedBy(carol))).payload).toMatchObject({ verified: true });
        expect((await bob.next(joinedBy(carol))).payload).toMatchObject({ verified: true });

        const discovered = await bob.request("discover", { payload: { namespace } }, ["peer_list"]);
        expect(peersOf(discovered)).toEqual([entry(alice, true), entry(bob, false), entry(carol, true)]);

        const room = unique("room");
        expect((await alice.request("create_room", { payload: { room_id: room } }, ["room_created"])).type).toBe("room_created");
        expect(peersOf(await bob.request("join_room", { payload: { room_id: room } }, ["peer_list"]))).toEqual([entry(alice, true), entry(bob, false)]);
        expect((await alice.next(joinedBy(bob))).payload).toMatchObject({ verified: false });

        const criteria = { game: unique("g") };
        expect(await bob.request("match", { payload: { namespace, group_size: 2, criteria } }, ["match"])).toMatchObject({ type: "match", payload: { status: "waiting" } });
        const matched = await alice.request("match", { payload: { namespace, group_size: 2, criteria } }, ["matched"]);
        expect(peersOf(matched)).toEqual([entry(bob, false), entry(alice, true)]);
      });

      it("a wrong signature, a replayed nonce and another connection's nonce get 401; the connection stays and may register", async () => {
        const key = await makeKey("p256-raw-p1363");
        const peer = await deployment.connect(first, 0);
        const thief = await deployment.connect(second, 1);

        const nonce = await challenge(peer);
        expectCode(await registerWith(peer, key, await (await makeKey("p256-raw-p1363")).sign(nonce)), 401, "register");
        // The failed register took the nonce: the right signature over it is a replay now.
        expectCode(await registerWith(peer, key, await key.sign(nonce)), 401, "register");
        // Another connection's nonce, signed by the right key, does not prove anything here.
        const theirs = await challenge(thief);
        await challenge(peer);
        expectCode(await registerWith(peer, key, await key.sign(theirs)), 401, "register");
        // Nothing was registered.
        expectCode(await peer.request("ping", {}, ["pong"]), 400, "ping");

        const signature = await key.sign(await challenge(peer));
        expectRegistered(await registerWith(peer, key, signature), key.publicKey, true);
        // That register's signature, replayed on another connection, proves nothing there.
        await challenge(thief);
        expectCode(await registerWith(thief, key, signature), 401, "register");
        expect(await peer.nothing((message) => message.type === "error", 200)).toBe(true);
      });

      it("a verified holder is not replaced by an unsigned register (409, the holder untouched), only by a signed one", async () => {
        const key = await makeKey("ed25519-spki");
        const holder = await deployment.connect(first, 0);
        expectRegistered(await proven(holder, key), key.publicKey, true);
        const namespace = unique("kp");
        await holder.join(namespace);

        const intruder = await deployment.connect(second, 1);
        expectCode(await registerWith(intruder, key, undefined), 409, "register");
        const witness = await deployment.connect(second, 1);
        expect((await witness.register()).type).toBe("registered");
        expect(peersOf(await witness.join(namespace))).toEqual([entry(holder, true), entry(witness, false)]);
        witness.send("signal", { to: holder.fingerprint, payload: { signal_type: "offer", sdp: "v=0" } });
        expect(await holder.next("signal")).toMatchObject({ from: witness.fingerprint, payload: { sdp: "v=0" } });

        const successor = await deployment.connect(second, 1);
        expectRegistered(await proven(successor, key), key.publicKey, true);
        const notice = await holder.next("error");
        expect(notice.payload).toMatchObject({ code: 409, close_code: 4001 });
        expect((await witness.next((message) => message.type === "peer_left" && message.from === holder.fingerprint)).namespace).toBe(namespace);
      });

      it("a signed register replaces an unverified holder", async () => {
        const key = await makeKey("ed25519-raw");
        const holder = await deployment.connect(first, 0);
        expectRegistered(await registerWith(holder, key, undefined), key.publicKey, false);
        const successor = await deployment.connect(second, 1);
        expectRegistered(await proven(successor, key), key.publicKey, true);
        expect((await holder.next("error")).payload).toMatchObject({ code: 409, close_code: 4001 });
      });

      it("without an acknowledgement, challenge is answered with a challenge message", async () => {
        const peer = await deployment.connect(first, 0);
        peer.send("challenge");
        expect((await peer.next("challenge")).payload?.["nonce"]).toMatch(/^[A-Za-z0-9_-]{43}$/);
        expectCode(await peer.request("register", { payload: { public_key: "k", signature: "not base64!" } }, ["registered"]), 400, "register");
      });
    });
  });

  describe("key_proof required", () => {
    const deployment = useDeployment(topology, "required");

    describe.each(TRANSPORT_PAIRS)("first side over %s, second over %s", (first, second) => {
      it("an unsigned register is 401 and the connection stays; a signed one registers and replaces a verified holder", async () => {
        const key = await makeKey("p256-spki-der");
        const holder = await deployment.connect(first, 0);
        expectCode(await registerWith(holder, key, undefined), 401, "register");
        expectRegistered(await proven(holder, key), key.publicKey, true);

        const intruder = await deployment.connect(second, 1);
        expectCode(await registerWith(intruder, key, undefined), 401, "register");
        expect(await holder.nothing("error", 200)).toBe(true);

        const successor = await deployment.connect(second, 1);
        expectRegistered(await proven(successor, key), key.publicKey, true);
        expect((await holder.next("error")).payload).toMatchObject({ code: 409, close_code: 4001 });
      });
    });
  });
});

describe("key_proof off", () => {
  let server: ServerProcess;
  const open: TestPeer[] = [];
  beforeAll(async () => {
    server = await startServer({ config: { key_proof: "off" } });
  });
  afterAll(async () => {
    closeAll(open);
    await server.stop();
  });

  describe.each(["ws", "sio"] as const)("over %s", (transport) => {
    it("challenge is 400, a signed register 401 (no nonce was issued); unsigned registers work, unverified", async () => {
      const key = await makeKey("p256-raw-p1363");
      const peer = await connect(server, transport);
      open.push(peer);
      expectCode(await peer.request("challenge", {}, ["challenge"]), 400, "challenge");
      expectCode(await registerWith(peer, key, await key.sign("anything")), 401, "register");
      expectRegistered(await registerWith(peer, key, undefined), key.publicKey, false);
    });
  });
});
