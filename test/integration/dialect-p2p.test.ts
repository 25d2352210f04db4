import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { workerOf, workers } from "../helpers/cluster.ts";
import { DIALECT_TOPOLOGIES, DialectClient, placeApart, type DialectDeployment } from "../helpers/dialect-client.ts";
import { connectWs, type TestPeer } from "../helpers/peers.ts";
import { unique } from "../helpers/redis-nodes.ts";
import { startServer, type ServerProcess } from "../helpers/server-process.ts";

/**
 * The p2p-go-app dialect at /p2p/ws (docs/dialects/p2p.md), driven with the frames its React client
 * sends: IDENTIFY, JOIN_ROOM, the joiner's SDP_OFFER to every member listed, the members'
 * SDP_ANSWER, ICE_CANDIDATE both ways. The rules that cross processes run in every topology, with
 * the two users of a pair on different sides (workers or nodes); the binding's own rules (first
 * frame, bounds, ignored frames) run on one process.
 */

const P2P_TYPES = new Set(["AUTH_SUCCESS", "AUTH_ERROR", "ROOM_MEMBERS", "NEW_PEER_IN_ROOM", "USER_LEFT_ROOM", "SDP_OFFER", "SDP_ANSWER", "ICE_CANDIDATE"]);
const POLICY_VIOLATION = 1008;
/** How long "nothing arrives" is waited for, when no later message can mark it. */
const QUIET_MS = 300;

const authSuccess = (username: string): Record<string, unknown> => ({ type: "AUTH_SUCCESS", status: "success", username });
const authError = (message: string): Record<string, unknown> => ({ type: "AUTH_ERROR", status: "error", username: "", message });

// What the React client sends: RTCSessionDescription's {type, sdp}, and RTCIceCandidate.toJSON().
const OFFER = { type: "offer", sdp: "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n" };
const ANSWER = { type: "answer", sdp: "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=Ünïcødé ✓ \"quoted\" \\back\\slash\r\n" };
const CANDIDATE = {
  candidate: "candidate:842163049 1 udp 1677729535 203.0.113.7 46154 typ srflx raddr 0.0.0.0 rport 0 generation 0 ufrag sXh4 network-cost 999",
  sdpMid: "0",
  sdpMLineIndex: 0,
  usernameFragment: "sXh4",
};
const CANDIDATE_NULL_MID = { candidate: "candidate:1 1 UDP 2122252543 192.168.1.1 12345 typ host", sdpMid: null, sdpMLineIndex: 0, usernameFragment: null };

const p2pUrl = (server: ServerProcess): string => `${server.http.replace(/^http/, "ws")}/p2p/ws`;

/** A user that identified: its client, the username, and the server's id for it (never sent to it; read from /stats). */
interface User {
  client: DialectClient;
  username: string;
  id: string;
}

/** Clients and native peers a test opened, closed after it. */
const opened: { close(): void }[] = [];
afterEach(() => {
  for (const client of opened.splice(0)) client.close();
});

async function open(server: ServerProcess): Promise<DialectClient> {
  const client = await DialectClient.open(p2pUrl(server));
  opened.push(client);
  return client;
}

async function p2pIdentities(server: ServerProcess): Promise<Set<string>> {
  return new Set((await workers(server)).flatMap((worker) => worker.peers).filter((peer) => peer.startsWith("p2p:")));
}

/** Connects and identifies; the id is the one identity that appeared in /stats meanwhile (tests of this file run one at a time). */
async function user(server: ServerProcess, username = unique("user")): Promise<User> {
  const before = await p2pIdentities(server);
  const client = await open(server);
  client.send({ type: "IDENTIFY", username });
  expect(await client.next((message) => message["type"] === "AUTH_SUCCESS" || message["type"] === "AUTH_ERROR")).toEqual(authSuccess(username));
  const added = [...(await p2pIdentities(server))].filter((identity) => !before.has(identity));
  expect(added).toHaveLength(1);
  return { client, username, id: (added[0] as string).slice("p2p:".length) };
}

/** Sends JOIN_ROOM and returns the ROOM_MEMBERS that answers it. */
async function join(member: User, roomId: string): Promise<Record<string, unknown>> {
  const from = member.client.received.length;
  member.client.send({ type: "JOIN_ROOM", roomId });
  return member.client.next((message) => message["type"] === "ROOM_MEMBERS" && message["roomId"] === roomId, 5_000, from);
}

/** A user on the second side, on another worker than `other` in a cluster. */
async function userApart(deployment: DialectDeployment, other: User, username?: string): Promise<User> {
  let placed: User | undefined;
  await placeApart(deployment, `p2p:${other.id}`, async () => {
    placed = await user(deployment.sides[1], username ?? unique("user"));
    return { client: placed.client, identity: `p2p:${placed.id}` };
  });
  return placed as User;
}

/**
 * An unidentified client on the second side, on another worker than `other` in a cluster: the
 * worker whose p2p connection count grew when it connected holds it.
 */
async function openApart(deployment: DialectDeployment, other: User): Promise<DialectClient> {
  const server = deployment.sides[1];
  if (!deployment.clustered) return open(server);
  const theirs = await workerOf(server, `p2p:${other.id}`);
  for (let attempt = 0; attempt < 20; attempt++) {
    const before = new Map((await workers(server)).map((worker) => [worker.node_id, worker.connections["p2p"] ?? 0]));
    const client = await open(server);
    const grown = (await workers(server)).filter((worker) => (worker.connections["p2p"] ?? 0) > (before.get(worker.node_id) ?? 0));
    if (grown.length === 1 && grown[0]?.node_id !== theirs) return client;
    client.close();
    await client.closed;
  }
  throw new Error("could not place a client on another worker in 20 attempts");
}

const peer = (member: User): { id: string; username: string } => ({ id: member.id, username: member.username });

/** Resolves true when nothing matching arrives from `fromIndex` on within `ms`. */
async function nothing(client: DialectClient, match: (message: Record<string, unknown>) => boolean, fromIndex = 0, ms = QUIET_MS): Promise<boolean> {
  try {
    await client.next(match, ms, fromIndex);
    return false;
  } catch {
    return true;
  }
}

const ofType = (type: string) => (message: Record<string, unknown>): boolean => message["type"] === type;

describe.each(DIALECT_TOPOLOGIES)("p2p-go-app across processes: $name", (topology) => {
  let deployment: DialectDeployment;

  beforeAll(async () => {
    deployment = await topology.start();
  }, 60_000);
  afterAll(async () => {
    await deployment?.stop();
  });

  it("a username held on one side is refused on the other (exact and case-sensitive), and free again once its holder disconnects", async () => {
    const [a, b] = deployment.sides;
    const name = unique("Alice");
    const holder = await user(a, name);

    const second = await openApart(deployment, holder);
    second.send({ type: "IDENTIFY", username: name });
    expect(await second.nextOfType("AUTH_ERROR")).toEqual(authError("Username already taken."));
    expect(await second.closed).toBe(POLICY_VIOLATION);
    expect(second.received).toHaveLength(1);

    await user(b, name.toLowerCase());

    // The holder leaves: a witness in its room hears it, and by then the name is free everywhere.
    const room = unique("room");
    await join(holder, room);
    const witness = await user(a);
    await join(witness, room);
    holder.client.close();
    expect(await witness.client.nextOfType("USER_LEFT_ROOM")).toEqual({ type: "USER_LEFT_ROOM", roomId: room, peer: peer(holder) });
    await user(b, name);
  });

  it("IDENTIFY answers AUTH_SUCCESS alone; a username may hold any characters, up to 64, and is held as written on every side", async () => {
    for (const username of [`alice ${unique("")}`, `Ünïcødé ✓ 日本語 🎮 "q" \\ ${unique("")}`, unique("x").padEnd(64, "é")]) {
      const member = await user(deployment.sides[0], username);
      expect(member.client.received).toEqual([authSuccess(username)]);
      const other = await open(deployment.sides[1]);
      other.send({ type: "IDENTIFY", username });
      expect(await other.nextOfType("AUTH_ERROR")).toEqual(authError("Username already taken."));
    }
  });

  it("a roomId may hold any printable characters, up to 64", async () => {
    const room = `${unique("room")} / ünï ✓ #?&`.padEnd(64, "x");
    const alice = await user(deployment.sides[0]);
    const bob = await userApart(deployment, alice);
    expect(await join(alice, room)).toEqual({ type: "ROOM_MEMBERS", roomId: room, members: [] });
    expect(await join(bob, room)).toEqual({ type: "ROOM_MEMBERS", roomId: room, members: [peer(alice)] });
  });

  it("one username claimed at once on both sides: exactly one connection gets it", async () => {
    const name = unique("race");
    const clients = await Promise.all([0, 1, 0, 1, 0, 1].map((side) => open(deployment.sides[side] as ServerProcess)));
    for (const client of clients) client.send({ type: "IDENTIFY", username: name });
    const replies = await Promise.all(clients.map((client) => client.next((message) => message["type"] === "AUTH_SUCCESS" || message["type"] === "AUTH_ERROR")));
    expect(replies.filter((reply) => reply["type"] === "AUTH_SUCCESS")).toEqual([authSuccess(name)]);
    expect(replies.filter((reply) => reply["type"] === "AUTH_ERROR")).toEqual(Array(5).fill(authError("Username already taken.")));
  });

  it("JOIN_ROOM lists the other members oldest first without the joiner; each of them gets NEW_PEER_IN_ROOM", async () => {
    const room = unique("room");
    const alice = await user(deployment.sides[0]);
    expect(await join(alice, room)).toEqual({ type: "ROOM_MEMBERS", roomId: room, members: [] });

    const bob = await userApart(deployment, alice);
    expect(await join(bob, room)).toEqual({ type: "ROOM_MEMBERS", roomId: room, members: [peer(alice)] });
    expect(await alice.client.nextOfType("NEW_PEER_IN_ROOM")).toEqual({ type: "NEW_PEER_IN_ROOM", roomId: room, peer: peer(bob) });

    const carol = await user(deployment.sides[0]);
    expect(await join(carol, room)).toEqual({ type: "ROOM_MEMBERS", roomId: room, members: [peer(alice), peer(bob)] });
    for (const member of [alice, bob]) {
      await member.client.next((message) => message["type"] === "NEW_PEER_IN_ROOM" && (message["peer"] as { id: string }).id === carol.id);
      expect(member.client.ofType("NEW_PEER_IN_ROOM").filter((message) => (message["peer"] as { id: string }).id === carol.id)).toHaveLength(1);
    }
    expect(bob.client.ofType("NEW_PEER_IN_ROOM")).toEqual([{ type: "NEW_PEER_IN_ROOM", roomId: room, peer: peer(carol) }]);
  });

  it("the client's whole flow: the joiner offers to the member listed, it answers, ICE both ways, every field kept and no id sent to its owner", async () => {
    const room = unique("room");
    const alice = await user(deployment.sides[0]);
    await join(alice, room);
    const bob = await userApart(deployment, alice);
    const listed = (await join(bob, room))["members"] as { id: string }[];
    expect(listed).toEqual([peer(alice)]);
    await alice.client.nextOfType("NEW_PEER_IN_ROOM");

    // Exactly the React client's frames.
    bob.client.send({ type: "SDP_OFFER", toPeerId: alice.id, sdp: { type: OFFER.type, sdp: OFFER.sdp } });
    expect(await alice.client.nextOfType("SDP_OFFER")).toEqual({ type: "SDP_OFFER", fromPeerId: bob.id, sdp: OFFER });
    alice.client.send({ type: "SDP_ANSWER", toPeerId: bob.id, sdp: { type: ANSWER.type, sdp: ANSWER.sdp } });
    expect(await bob.client.nextOfType("SDP_ANSWER")).toEqual({ type: "SDP_ANSWER", fromPeerId: alice.id, sdp: ANSWER });

    bob.client.send({ type: "ICE_CANDIDATE", toPeerId: alice.id, iceCandidate: CANDIDATE });
    alice.client.send({ type: "ICE_CANDIDATE", toPeerId: bob.id, iceCandidate: CANDIDATE_NULL_MID });
    alice.client.send({ type: "ICE_CANDIDATE", toPeerId: bob.id, iceCandidate: CANDIDATE });
    expect(await alice.client.nextOfType("ICE_CANDIDATE")).toEqual({ type: "ICE_CANDIDATE", fromPeerId: bob.id, iceCandidate: CANDIDATE });
    await bob.client.next((message) => message["type"] === "ICE_CANDIDATE" && (message["iceCandidate"] as { sdpMid: unknown }).sdpMid === "0");
    expect(bob.client.ofType("ICE_CANDIDATE")).toEqual([
      { type: "ICE_CANDIDATE", fromPeerId: alice.id, iceCandidate: CANDIDATE_NULL_MID },
      { type: "ICE_CANDIDATE", fromPeerId: alice.id, iceCandidate: CANDIDATE },
    ]);

    for (const member of [alice, bob]) {
      expect(JSON.stringify(member.client.received)).not.toContain(member.id);
      expect(member.client.received.every((message) => P2P_TYPES.has(message["type"] as string))).toBe(true);
    }
  });

  it("fromPeerId is the server's: a value the client sets is overwritten", async () => {
    const room = unique("room");
    const alice = await user(deployment.sides[0]);
    await join(alice, room);
    const bob = await userApart(deployment, alice);
    const carol = await user(deployment.sides[0]);
    await join(bob, room);
    await join(carol, room);

    bob.client.send({ type: "SDP_OFFER", toPeerId: alice.id, fromPeerId: carol.id, sdp: OFFER });
    bob.client.send({ type: "ICE_CANDIDATE", toPeerId: alice.id, fromPeerId: "server", iceCandidate: CANDIDATE });
    expect(await alice.client.nextOfType("SDP_OFFER")).toEqual({ type: "SDP_OFFER", fromPeerId: bob.id, sdp: OFFER });
    expect(await alice.client.nextOfType("ICE_CANDIDATE")).toEqual({ type: "ICE_CANDIDATE", fromPeerId: bob.id, iceCandidate: CANDIDATE });
  });

  it("a signal to a user of another room, or to an unknown id, is dropped; the sender stays connected", async () => {
    const alice = await user(deployment.sides[0]);
    const room = unique("room");
    await join(alice, room);
    const mallory = await userApart(deployment, alice);
    await join(mallory, unique("elsewhere"));
    const bob = await user(deployment.sides[1]);
    await join(bob, room);

    mallory.client.send({ type: "SDP_OFFER", toPeerId: alice.id, sdp: OFFER });
    mallory.client.send({ type: "ICE_CANDIDATE", toPeerId: alice.id, iceCandidate: CANDIDATE });
    mallory.client.send({ type: "SDP_OFFER", toPeerId: "00000000-0000-4000-8000-000000000000", sdp: OFFER });
    mallory.client.send({ type: "SDP_OFFER", toPeerId: alice.id.toUpperCase(), sdp: OFFER });
    // Sent after Mallory's: Bob's offer from the same room is the marker.
    bob.client.send({ type: "SDP_ANSWER", toPeerId: alice.id, sdp: ANSWER });
    await alice.client.nextOfType("SDP_ANSWER");
    expect(await nothing(alice.client, ofType("SDP_OFFER"))).toBe(true);
    expect(alice.client.ofType("ICE_CANDIDATE")).toEqual([]);

    // Mallory is still served: she joins Alice's room and is listed, then her offer arrives.
    expect(await join(mallory, room)).toEqual({ type: "ROOM_MEMBERS", roomId: room, members: [peer(alice), peer(bob)] });
    mallory.client.send({ type: "SDP_OFFER", toPeerId: alice.id, sdp: OFFER });
    expect(await alice.client.nextOfType("SDP_OFFER")).toEqual({ type: "SDP_OFFER", fromPeerId: mallory.id, sdp: OFFER });
  });

  it("switching rooms: joining B after A works, A's members get USER_LEFT_ROOM, and later joins still work", async () => {
    const roomA = unique("room-a");
    const roomB = unique("room-b");
    const alice = await user(deployment.sides[0]);
    await join(alice, roomA);
    const bob = await userApart(deployment, alice);
    await join(bob, roomA);
    await alice.client.nextOfType("NEW_PEER_IN_ROOM");

    expect(await join(bob, roomB)).toEqual({ type: "ROOM_MEMBERS", roomId: roomB, members: [] });
    expect(await alice.client.nextOfType("USER_LEFT_ROOM")).toEqual({ type: "USER_LEFT_ROOM", roomId: roomA, peer: peer(bob) });

    const carol = await user(deployment.sides[0]);
    expect(await join(carol, roomB)).toEqual({ type: "ROOM_MEMBERS", roomId: roomB, members: [peer(bob)] });
    expect(await bob.client.nextOfType("NEW_PEER_IN_ROOM")).toEqual({ type: "NEW_PEER_IN_ROOM", roomId: roomB, peer: peer(carol) });

    // Back to A: listed there again, announced to A, gone from B; nothing of B reached Alice.
    const bobFrom = bob.client.received.length;
    const aliceFrom = alice.client.received.length;
    expect(await join(bob, roomA)).toEqual({ type: "ROOM_MEMBERS", roomId: roomA, members: [peer(alice)] });
    expect(await alice.client.nextOfType("NEW_PEER_IN_ROOM", 5_000, aliceFrom)).toEqual({ type: "NEW_PEER_IN_ROOM", roomId: roomA, peer: peer(bob) });
    expect(await carol.client.nextOfType("USER_LEFT_ROOM")).toEqual({ type: "USER_LEFT_ROOM", roomId: roomB, peer: peer(bob) });
    expect(alice.client.received.filter((message) => message["roomId"] === roomB)).toEqual([]);

    // Signals follow the room: Carol (B) no longer reaches Bob, Alice (A) does.
    carol.client.send({ type: "SDP_OFFER", toPeerId: bob.id, sdp: OFFER });
    alice.client.send({ type: "SDP_OFFER", toPeerId: bob.id, sdp: OFFER });
    expect(await bob.client.nextOfType("SDP_OFFER", 5_000, bobFrom)).toEqual({ type: "SDP_OFFER", fromPeerId: alice.id, sdp: OFFER });
    expect(await nothing(bob.client, (message) => message["type"] === "SDP_OFFER" && message["fromPeerId"] === carol.id)).toBe(true);
  });

  it("a disconnect is announced with USER_LEFT_ROOM to the leaver's room only", async () => {
    const room = unique("room");
    const other = unique("other");
    const alice = await user(deployment.sides[0]);
    await join(alice, room);
    const bob = await userApart(deployment, alice);
    await join(bob, room);
    await alice.client.nextOfType("NEW_PEER_IN_ROOM");
    const carol = await user(deployment.sides[1]);
    await join(carol, other);

    bob.client.close();
    expect(await alice.client.nextOfType("USER_LEFT_ROOM")).toEqual({ type: "USER_LEFT_ROOM", roomId: room, peer: peer(bob) });
    // Carol's next message is the marker, with nothing of Bob before it.
    const dave = await user(deployment.sides[0]);
    await join(dave, other);
    await carol.client.nextOfType("NEW_PEER_IN_ROOM");
    expect(carol.client.received.filter((message) => message["type"] !== "AUTH_SUCCESS" && message["type"] !== "ROOM_MEMBERS")).toEqual([
      { type: "NEW_PEER_IN_ROOM", roomId: other, peer: peer(dave) },
    ]);
  });

  it("does not meet /ws: a namespace named like the room is another place, and no native message reaches a p2p client", async () => {
    const name = unique("lobby");
    const native = await nativePeer(deployment.sides[1], name);
    const alice = await user(deployment.sides[0]);
    expect(await join(alice, name)).toEqual({ type: "ROOM_MEMBERS", roomId: name, members: [] });
    const bob = await userApart(deployment, alice);
    expect(await join(bob, name)).toEqual({ type: "ROOM_MEMBERS", roomId: name, members: [peer(alice)] });

    // The native side: its namespace holds only itself; it cannot reach a p2p user, and hears nothing of them.
    const second = await nativePeer(deployment.sides[0], name);
    const list = await second.join(name);
    expect((list.payload?.["peers"] as { fingerprint: string }[]).map((entry) => entry.fingerprint)).toEqual([native.fingerprint, second.fingerprint]);
    const refused = await native.request("signal", { to: `p2p:${alice.id}`, payload: { sdp: "x" } });
    expect(refused.type).toBe("error");
    expect(refused.payload?.code).toBe(403);
    native.send("broadcast", { payload: { namespace: name, data: { hello: 1 } } });
    expect((await second.next("broadcast")).from).toBe(native.fingerprint);
    bob.client.close();
    await alice.client.nextOfType("USER_LEFT_ROOM");
    expect(await native.nothing("peer_left", QUIET_MS)).toBe(true);
    expect(native.received.filter((message) => message.type === "peer_joined").map((message) => message.from)).toEqual([second.fingerprint]);
    expect(JSON.stringify([...native.received, ...second.received])).not.toContain("p2p");

    for (const message of alice.client.received) expect(P2P_TYPES.has(message["type"] as string), JSON.stringify(message)).toBe(true);
    expect(alice.client.received.map((message) => message["type"])).toEqual(["AUTH_SUCCESS", "ROOM_MEMBERS", "NEW_PEER_IN_ROOM", "USER_LEFT_ROOM"]);
  });
});

/** A registered /ws peer in namespace `name`, closed after the test. */
async function nativePeer(server: ServerProcess, name: string): Promise<TestPeer> {
  const native = await connectWs(server.ws);
  opened.push(native);
  expect((await native.register()).type).toBe("registered");
  expect((await native.join(name)).type).toBe("peer_list");
  return native;
}

describe("p2p-go-app binding rules (one process)", () => {
  let server: ServerProcess;

  beforeAll(async () => {
    server = await startServer();
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
  });

  /** Sends one first frame (text, or binary bytes) and returns what came back before the close, and the close code. */
  async function firstFrame(frame: string | Buffer): Promise<{ received: Record<string, unknown>[]; code: number }> {
    const client = await open(server);
    if (typeof frame === "string") client.send(frame);
    else client.socket.send(frame, { binary: true });
    const code = await client.closed;
    return { received: client.received, code };
  }

  it("an empty, missing or null username gets AUTH_ERROR 'Username cannot be empty.' and close 1008", async () => {
    for (const frame of [{ type: "IDENTIFY", username: "" }, { type: "IDENTIFY" }, { type: "IDENTIFY", username: null }]) {
      expect(await firstFrame(JSON.stringify(frame))).toEqual({ received: [authError("Username cannot be empty.")], code: POLICY_VIOLATION });
    }
  });

  it("a username over 64 characters gets AUTH_ERROR and close 1008", async () => {
    const frame = JSON.stringify({ type: "IDENTIFY", username: "a".repeat(65) });
    expect(await firstFrame(frame)).toEqual({ received: [authError("Username must be at most 64 characters.")], code: POLICY_VIOLATION });
  });

  it("a first frame that is not IDENTIFY (another type, bad JSON, a non-string username, binary) gets AUTH_ERROR and close 1008", async () => {
    const refusal = { received: [authError("Invalid initial message. Expected type 'IDENTIFY'.")], code: POLICY_VIOLATION };
    for (const frame of [
      JSON.stringify({ type: "JOIN_ROOM", roomId: "lobby" }),
      JSON.stringify({ type: "identify", username: "alice" }),
      JSON.stringify({ type: "IDENTIFY", username: 42 }),
      JSON.stringify([{ type: "IDENTIFY", username: "alice" }]),
      "{not json",
      Buffer.from(JSON.stringify({ type: "IDENTIFY", username: "alice" })),
    ]) {
      expect(await firstFrame(frame)).toEqual(refusal);
    }
  });

  it("a connection that sends nothing for 5 s gets AUTH_ERROR and close 1008", async () => {
    const started = Date.now();
    const client = await open(server);
    expect(await client.closed).toBe(POLICY_VIOLATION);
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(4_900);
    expect(elapsed).toBeLessThan(7_000);
    expect(client.received).toEqual([authError("No IDENTIFY message within 5 seconds.")]);
  }, 10_000);

  it("CHAT_MESSAGE, unknown types, bad JSON, binary, a second IDENTIFY and unusable JOIN_ROOM or signals are ignored; the socket stays", async () => {
    const room = unique("room");
    const alice = await user(server);
    const bob = await user(server);
    await join(alice, room);
    await join(bob, room);
    await alice.client.nextOfType("NEW_PEER_IN_ROOM");
    const aliceFrom = alice.client.received.length;
    const bobFrom = bob.client.received.length;

    let deep: unknown = "x";
    for (let i = 0; i < 40; i++) deep = [deep];
    for (const frame of [
      { type: "CHAT_MESSAGE", content: "hello" },
      { type: "LEAVE_ROOM", roomId: room },
      { type: "IDENTIFY", username: unique("again") },
      { roomId: room },
      { type: "JOIN_ROOM" },
      { type: "JOIN_ROOM", roomId: "" },
      { type: "JOIN_ROOM", roomId: 7 },
      { type: "JOIN_ROOM", roomId: "r".repeat(65) },
      { type: "JOIN_ROOM", roomId: "tab\there" },
      { type: "SDP_OFFER", sdp: OFFER },
      { type: "SDP_OFFER", toPeerId: alice.id, sdp: "v=0" },
      { type: "ICE_CANDIDATE", toPeerId: alice.id },
      { type: "SDP_OFFER", toPeerId: alice.id, sdp: { type: "offer", sdp: deep } },
    ]) {
      bob.client.send(frame);
    }
    bob.client.send("{not json");
    bob.client.send("[1,2]");
    bob.client.socket.send(Buffer.from([1, 2, 3]), { binary: true });

    // The marker: Bob joins his room again and is answered with the same list (nobody is told).
    expect(await join(bob, room)).toEqual({ type: "ROOM_MEMBERS", roomId: room, members: [peer(alice)] });
    expect(bob.client.received.slice(bobFrom)).toEqual([{ type: "ROOM_MEMBERS", roomId: room, members: [peer(alice)] }]);
    expect(await nothing(alice.client, () => true, aliceFrom)).toBe(true);
    bob.client.send({ type: "SDP_OFFER", toPeerId: alice.id, sdp: OFFER });
    expect(await alice.client.nextOfType("SDP_OFFER", 5_000, aliceFrom)).toEqual({ type: "SDP_OFFER", fromPeerId: bob.id, sdp: OFFER });
  });

  it("joining the room one is in again lists its members again and tells nobody", async () => {
    const room = unique("room");
    const alice = await user(server);
    const bob = await user(server);
    await join(alice, room);
    await join(bob, room);
    expect(await join(alice, room)).toEqual({ type: "ROOM_MEMBERS", roomId: room, members: [peer(bob)] });
    const carol = await user(server);
    await join(carol, room);
    // Bob's next message after Alice's second join is Carol's arrival.
    await bob.client.next((message) => message["type"] === "NEW_PEER_IN_ROOM" && (message["peer"] as { id: string }).id === carol.id);
    expect(bob.client.ofType("NEW_PEER_IN_ROOM")).toEqual([{ type: "NEW_PEER_IN_ROOM", roomId: room, peer: peer(carol) }]);
  });
});
