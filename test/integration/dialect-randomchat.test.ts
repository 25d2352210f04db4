import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { DIALECT_TOPOLOGIES, DialectClient, placeApart, type DialectDeployment } from "../helpers/dialect-client.ts";
import { registeredPeer, type TestPeer } from "../helpers/peers.ts";
import { getJson, startServer, type ServerProcess } from "../helpers/server-process.ts";
import { waitFor } from "../helpers/wait.ts";

/**
 * The random video-chat dialect at /randomchat/ws (docs/dialects/randomchat.md), driven with the
 * frames its client sends: `available`, the initiator's `offer`, the answer, `ice` both ways,
 * `next` (after which the client just waits), `leave`, `ping`. The rules that cross processes run
 * in every topology, with the users of a pair on different sides (workers or nodes); the options
 * (rate, origins, token, re-queueing) run on one process each.
 *
 * The lobby is one queue for the whole deployment, so the tests of a topology run one at a time
 * and each ends once the server has forgotten every user it opened.
 */

const RANDOMCHAT_TYPES = new Set(["ready", "matched", "partner-left", "offer", "answer", "ice", "pong", "error"]);
const ERROR_CODES = ["UNKNOWN_TYPE", "INVALID_FORMAT", "NOT_PAIRED", "ALREADY_PAIRED", "RATE_LIMIT", "UNAUTHORIZED"];
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const POLICY_VIOLATION = 1008;
/** How long "nothing arrives" is waited for, when no later message can mark it. */
const QUIET_MS = 300;

// What the client sends: the SDP text of an RTCSessionDescription, and an RTCIceCandidate.
const OFFER_SDP = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n";
const ANSWER_SDP = "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=Ünïcødé ✓ \"quoted\" \\back\\slash\r\n";
const CANDIDATE = {
  candidate: "candidate:842163049 1 udp 1677729535 203.0.113.7 46154 typ srflx raddr 0.0.0.0 rport 0 generation 0 ufrag sXh4 network-cost 999",
  sdpMid: "0",
  sdpMLineIndex: 0,
  usernameFragment: "sXh4",
};
const CANDIDATE_NULL_MID = { candidate: "candidate:1 1 UDP 2122252543 192.168.1.1 12345 typ host", sdpMid: null, sdpMLineIndex: 0, usernameFragment: null };

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A random-chat user as its client sees the server: one socket, and the clientId `ready` gave it. */
class User {
  private constructor(
    readonly client: DialectClient,
    readonly clientId: string,
  ) {}

  static async open(server: ServerProcess, headers?: Record<string, string>): Promise<User> {
    const client = await DialectClient.open(`${server.http.replace(/^http/, "ws")}/randomchat/ws`, { headers });
    opened.push(client);
    const ready = await client.nextOfType("ready");
    return new User(client, String(ready["clientId"]));
  }

  /** Its fingerprint in the core, as the admin listener's /admin/stats?detail=peers lists it. */
  get identity(): string {
    return `randomchat:${this.clientId}`;
  }

  send(type: string, fields: Record<string, unknown> = {}): void {
    this.client.send({ type, ...fields });
  }

  /** Pings and waits for the pong: everything this user sent before has been handled (pong comes in order). */
  async sync(): Promise<void> {
    const from = this.client.received.length;
    this.send("ping");
    await this.client.nextOfType("pong", 5_000, from);
  }

  /** Sends `available` and waits until the server has queued it. */
  async waiting(): Promise<void> {
    this.send("available");
    await this.sync();
  }

  count(type: string): number {
    return this.client.ofType(type).length;
  }

  matches(): Record<string, unknown>[] {
    return this.client.ofType("matched");
  }

  /** The `n`th matched this user received (1-based), once it has arrived. */
  async match(n: number): Promise<Record<string, unknown>> {
    await waitFor(() => this.matches().length, (count) => count >= n, { timeoutMs: 5_000, what: `matched #${n} for ${this.clientId}` });
    return this.matches()[n - 1] as Record<string, unknown>;
  }

  /** Waits for the `n`th partner-left (1-based). */
  async partnerLeft(n = 1): Promise<void> {
    await waitFor(() => this.count("partner-left"), (count) => count >= n, { timeoutMs: 5_000, what: `partner-left #${n} for ${this.clientId}` });
  }

  errorCodes(): unknown[] {
    return this.client.ofType("error").map((error) => error["code"]);
  }
}

/** Everything a test opened; closed after it, their received types checked against the vocabulary. */
const opened: DialectClient[] = [];
const natives: TestPeer[] = [];

/** Closes what the test opened, waits until `server` (any side) no longer counts a peer, then checks the vocabulary. */
async function closeEverything(server: ServerProcess): Promise<void> {
  const clients = opened.splice(0);
  for (const client of clients) client.close();
  for (const native of natives.splice(0)) native.close();
  await Promise.all(clients.map((client) => client.closed));
  await waitFor(() => getJson(`${server.http}/stats`).then(({ body }) => body["total_peers"]), (total) => total === 0, {
    timeoutMs: 10_000,
    what: "the server to forget every peer",
  });
  // No random-chat client ever receives another vocabulary's message type.
  for (const client of clients) {
    const foreign = client.received.filter((message) => !RANDOMCHAT_TYPES.has(String(message["type"])));
    expect(foreign).toEqual([]);
    // Its errors are its own too, never the core's `{type:"error", payload}`.
    for (const error of client.ofType("error")) expect(ERROR_CODES).toContain(error["code"]);
  }
}

/** `a` and `b` got one matched each for the same pair: the same roomId, each other's clientId, and opposite roles. */
async function expectPaired(a: User, b: User, matchOfA = 1, matchOfB = 1): Promise<void> {
  const [ma, mb] = await Promise.all([a.match(matchOfA), b.match(matchOfB)]);
  expect(ma).toEqual({ type: "matched", roomId: ma["roomId"], partnerId: b.clientId, initiator: ma["initiator"] });
  expect(mb).toEqual({ type: "matched", roomId: ma["roomId"], partnerId: a.clientId, initiator: !ma["initiator"] });
  expect(typeof ma["roomId"]).toBe("string");
  expect(typeof ma["initiator"]).toBe("boolean");
}

describe.each(DIALECT_TOPOLOGIES)("random chat over $name", (topology) => {
  let deployment: DialectDeployment;

  beforeAll(async () => {
    // The native peers of these tests depart at once when closed (resume_grace 0): every test starts from an empty deployment.
    deployment = await topology.start({ resume_grace: 0 });
  }, 60_000);
  afterAll(async () => {
    await deployment?.stop();
  });
  afterEach(async () => {
    await closeEverything(deployment.sides[0]);
  });

  const open = (side: 0 | 1): Promise<User> => User.open(deployment.sides[side]);

  /** A user on the second side, on another worker than `other` in a cluster. */
  async function openApart(other: User): Promise<User> {
    let placed: User | undefined;
    await placeApart(deployment, other.identity, async () => {
      placed = await open(1);
      return { client: placed.client, identity: placed.identity };
    });
    return placed as User;
  }

  /** Two users on different sides, paired: `a` waited first, so it is the initiator. */
  async function pair(): Promise<{ a: User; b: User }> {
    const a = await open(0);
    const b = await openApart(a);
    await a.waiting();
    b.send("available");
    await expectPaired(a, b);
    expect(a.matches()[0]?.["initiator"]).toBe(true);
    return { a, b };
  }

  it("greets every connection with ready and a fresh clientId", async () => {
    const users = [await open(0), await open(0), await open(1), await open(1)];
    for (const user of users) {
      expect(user.client.received[0]).toEqual({ type: "ready", clientId: user.clientId });
      expect(user.clientId).toMatch(UUID);
    }
    expect(new Set(users.map((user) => user.clientId)).size).toBe(4);
  });

  it("pairs two available users on different sides once: same roomId, each other's clientId, one initiator", async () => {
    const { a, b } = await pair();
    await Promise.all([a.sync(), b.sync()]);
    await sleep(QUIET_MS);
    expect(a.matches()).toHaveLength(1);
    expect(b.matches()).toHaveLength(1);
    expect(b.matches()[0]?.["initiator"]).toBe(false);
  });

  it("pairs first come, first served across sides: the user waiting longest is paired first", async () => {
    const { a, b } = await pair();
    // b goes back to waiting first (its partner left), a after it; the two avoid each other.
    a.send("leave");
    await b.partnerLeft();
    await b.sync();
    await a.waiting();
    const c = await open(0);
    c.send("available");
    await expectPaired(b, c, 2, 1);
    expect(b.matches()[1]?.["initiator"]).toBe(true);
    const d = await open(1);
    d.send("available");
    await expectPaired(a, d, 2, 1);
    expect(a.matches()[1]?.["initiator"]).toBe(true);
  });

  it("relays offer, answer and ice both ways with the sender's clientId as from, to the partner only", async () => {
    const { a, b } = await pair();
    const other = await pair();
    a.send("offer", { sdp: OFFER_SDP });
    expect(await b.client.nextOfType("offer")).toEqual({ type: "offer", from: a.clientId, sdp: OFFER_SDP });
    b.send("answer", { sdp: ANSWER_SDP });
    expect(await a.client.nextOfType("answer")).toEqual({ type: "answer", from: b.clientId, sdp: ANSWER_SDP });
    a.send("ice", { candidate: CANDIDATE });
    b.send("ice", { candidate: CANDIDATE_NULL_MID });
    expect(await b.client.nextOfType("ice")).toEqual({ type: "ice", from: a.clientId, candidate: CANDIDATE });
    expect(await a.client.nextOfType("ice")).toEqual({ type: "ice", from: b.clientId, candidate: CANDIDATE_NULL_MID });
    // The other pair heard none of it; a later relay of their own marks the end.
    other.a.send("offer", { sdp: "v=0\r\n" });
    expect(await other.b.client.nextOfType("offer")).toEqual({ type: "offer", from: other.a.clientId, sdp: "v=0\r\n" });
    expect(other.a.count("offer") + other.a.count("answer") + other.a.count("ice") + other.b.count("answer") + other.b.count("ice")).toBe(0);
    expect([a.count("offer"), b.count("answer")]).toEqual([0, 0]);
  });

  it("answers NOT_PAIRED, ALREADY_PAIRED, UNKNOWN_TYPE and INVALID_FORMAT with the socket left open", async () => {
    const a = await open(0);
    a.send("offer", { sdp: OFFER_SDP });
    a.send("answer", { sdp: ANSWER_SDP });
    a.send("ice", { candidate: CANDIDATE });
    a.send("next");
    a.client.send("{not json");
    a.client.send("[1,2]");
    a.client.send('"available"');
    a.client.send(JSON.stringify({ sdp: OFFER_SDP }));
    let deep: unknown = "x";
    for (let i = 0; i < 40; i++) deep = { inner: deep };
    a.client.send(JSON.stringify({ type: "offer", sdp: deep }));
    a.client.socket.send(Buffer.from(JSON.stringify({ type: "ping" })), { binary: true });
    a.send("dance");
    a.send("leave"); // no error when unpaired
    await a.sync();
    expect(a.errorCodes()).toEqual([
      "NOT_PAIRED",
      "NOT_PAIRED",
      "NOT_PAIRED",
      "NOT_PAIRED",
      "INVALID_FORMAT",
      "INVALID_FORMAT",
      "INVALID_FORMAT",
      "INVALID_FORMAT",
      "INVALID_FORMAT",
      "INVALID_FORMAT",
      "UNKNOWN_TYPE",
    ]);
    for (const error of a.client.ofType("error")) expect(Object.keys(error).sort()).toEqual(["code", "message", "type"]);
    for (const error of a.client.ofType("error")) expect(typeof error["message"]).toBe("string");

    // Paired: available again is ALREADY_PAIRED and changes nothing.
    const b = await openApart(a);
    await a.waiting();
    b.send("available");
    await expectPaired(a, b);
    b.send("available");
    await b.sync();
    expect(b.errorCodes()).toEqual(["ALREADY_PAIRED"]);
    b.send("offer", { sdp: OFFER_SDP });
    expect(await a.client.nextOfType("offer")).toEqual({ type: "offer", from: b.clientId, sdp: OFFER_SDP });
  });

  it("available while waiting keeps the user's place: it is paired once, with the next user", async () => {
    const a = await open(0);
    await a.waiting();
    await a.waiting();
    const b = await openApart(a);
    b.send("available");
    await expectPaired(a, b);
    expect(a.errorCodes()).toEqual([]);
    await Promise.all([a.sync(), b.sync()]);
    expect(a.matches()).toHaveLength(1);
  });

  it("next: the partner gets partner-left; both wait again, and the two alone are not paired with each other until others come", async () => {
    const { a, b } = await pair();
    a.send("next");
    await b.partnerLeft();
    await Promise.all([a.sync(), b.sync()]);
    await sleep(QUIET_MS);
    expect([a.matches().length, b.matches().length]).toEqual([1, 1]);
    expect(a.count("partner-left")).toBe(0);
    // Each of them is paired with one newcomer.
    const c = await open(0);
    c.send("available");
    const first = (await c.match(1))["partnerId"] === a.clientId ? a : b;
    const second = first === a ? b : a;
    await expectPaired(first, c, 2, 1);
    const d = await open(1);
    d.send("available");
    await expectPaired(second, d, 2, 1);
    expect(b.count("partner-left")).toBe(1);
  });

  it("next with a third user waiting: that user is paired with one of the two, never the two with each other", async () => {
    const { a, b } = await pair();
    const c = await open(1);
    await c.waiting();
    b.send("next");
    await a.partnerLeft();
    const withC = (await c.match(1))["partnerId"] === a.clientId ? a : b;
    const other = withC === a ? b : a;
    await expectPaired(withC, c, 2, 1);
    const d = await open(0);
    d.send("available");
    await expectPaired(other, d, 2, 1);
    // After their first pairing, neither is ever shown the other.
    expect(a.matches().slice(1).map((match) => match["partnerId"])).not.toContain(b.clientId);
    expect(b.matches().slice(1).map((match) => match["partnerId"])).not.toContain(a.clientId);
  });

  it("leave: the partner is told and waits again, the leaver does not; a waiting user who leaves is not paired", async () => {
    const { a, b } = await pair();
    a.send("leave");
    await b.partnerLeft();
    await b.sync();
    const c = await open(0);
    c.send("available");
    await expectPaired(b, c, 2, 1);
    await a.sync();
    expect([a.matches().length, a.count("partner-left"), a.errorCodes().length]).toEqual([1, 0, 0]);

    // Leaving while unpaired is no error; leaving while waiting gives up the place.
    a.send("leave");
    await a.waiting();
    a.send("leave");
    await a.sync();
    const d = await open(1);
    await d.waiting();
    await sleep(QUIET_MS);
    expect([a.matches().length, d.matches().length, a.errorCodes().length]).toEqual([1, 0, 0]);
    const e = await open(0);
    e.send("available");
    await expectPaired(d, e);
  });

  it("a leave that crosses a pairing leaves the partner waiting again and the leaver out of the queue", async () => {
    const a = await open(0);
    await a.waiting();
    const b = await openApart(a);
    // The leave may cross the pairing: b waits on, or hears matched and then partner-left; a is shown
    // the match only if its leave came after it.
    b.send("available");
    a.send("leave");
    await Promise.all([a.sync(), b.sync()]);
    // b's match request has its answer now (its pong comes after it). If it paired b with a, the
    // pair ends once a has heard matched and left the pair's room, across the nodes: a loaded
    // machine takes longer than the quiet period for that.
    if (b.matches().length > 0) await b.partnerLeft(b.matches().length);
    await sleep(QUIET_MS);
    expect(b.count("partner-left")).toBe(b.matches().length);
    expect(a.matches().length).toBeLessThanOrEqual(b.matches().length);
    expect(a.count("partner-left")).toBe(0);
    const c = await open(0);
    c.send("available");
    await expectPaired(b, c, b.matches().length + 1, 1);
    const d = await open(1);
    await d.waiting();
    await sleep(QUIET_MS);
    expect(d.matches()).toHaveLength(0);
  });

  it("disconnect while paired: the partner gets partner-left once and is paired with a newcomer", async () => {
    const { a, b } = await pair();
    a.client.close();
    await b.partnerLeft();
    const c = await open(0);
    c.send("available");
    await expectPaired(b, c, 2, 1);
    await Promise.all([b.sync(), c.sync()]);
    await sleep(QUIET_MS);
    expect([b.count("partner-left"), c.count("partner-left")]).toEqual([1, 0]);
  });

  it("a partner who sends next and disconnects at once causes one partner-left, none in the next pairing", async () => {
    const { a, b } = await pair();
    a.send("next");
    a.client.close();
    await b.partnerLeft();
    await a.client.closed;
    // a waited again before it went: the server forgets it, and with it its place.
    await registeredCount(1);
    const c = await open(0);
    c.send("available");
    await expectPaired(b, c, 2, 1);
    await Promise.all([b.sync(), c.sync()]);
    await sleep(QUIET_MS);
    expect([b.count("partner-left"), c.count("partner-left")]).toEqual([1, 0]);
  });

  it("a user who disconnects while waiting is never matched: a newcomer waits for a live user", async () => {
    const a = await open(0);
    await a.waiting();
    a.client.close();
    await a.client.closed;
    await registeredCount(0);
    const b = await open(1);
    await b.waiting();
    await sleep(QUIET_MS);
    expect(b.matches()).toHaveLength(0);
    const c = await open(0);
    c.send("available");
    await expectPaired(b, c);
  });

  it("pairs 20 users arriving at once on both sides: each matched once, partners mutual", async () => {
    const users = await Promise.all(Array.from({ length: 20 }, (_, i) => open(i % 2 === 0 ? 0 : 1)));
    for (const user of users) user.send("available");
    await Promise.all(users.map((user) => user.match(1)));
    await Promise.all(users.map((user) => user.sync()));
    await sleep(QUIET_MS);
    const byId = new Map(users.map((user) => [user.clientId, user]));
    for (const user of users) {
      expect(user.matches()).toHaveLength(1);
      const match = user.matches()[0] as Record<string, unknown>;
      const partner = byId.get(String(match["partnerId"]));
      expect(partner).toBeDefined();
      expect(partner).not.toBe(user);
      const back = partner?.matches()[0];
      expect(back?.["partnerId"]).toBe(user.clientId);
      expect(back?.["roomId"]).toBe(match["roomId"]);
      expect(back?.["initiator"]).toBe(!match["initiator"]);
      expect(user.count("partner-left")).toBe(0);
    }
    expect(new Set(users.map((user) => user.matches()[0]?.["roomId"])).size).toBe(10);
  });

  it("/randomchat/healthz reports the random-chat connections of the whole deployment", async () => {
    const users = [await open(0), await open(0), await open(1)];
    natives.push(await registeredPeer(deployment.sides[0], "ws"));
    for (const side of deployment.sides) {
      const { body } = await waitFor(() => getJson(`${side.http}/randomchat/healthz`), ({ body }) => body["clients"] === 3, {
        timeoutMs: 5_000,
        what: "healthz to count 3 clients",
      });
      expect(Object.keys(body).sort()).toEqual(["clients", "instanceId", "ok", "uptime"]);
      expect(body["ok"]).toBe(true);
      expect(typeof body["uptime"]).toBe("number");
      expect(body["uptime"] as number).toBeGreaterThanOrEqual(0);
      expect(typeof body["instanceId"]).toBe("string");
      expect(body["instanceId"]).not.toBe("");
    }
    users[0]?.client.close();
    await waitFor(() => getJson(`${deployment.sides[1].http}/randomchat/healthz`), ({ body }) => body["clients"] === 2, {
      timeoutMs: 5_000,
      what: "healthz to count 2 clients",
    });
  });

  it("does not meet the native protocol: its queue and rooms are out of /ws reach, and departures stay where the peer was", async () => {
    const native = await registeredPeer(deployment.sides[0], "ws", { namespace: "lobby" });
    const watcher = await registeredPeer(deployment.sides[1], "ws", { namespace: "lobby" });
    natives.push(native, watcher);
    // The dialect's names hold a `/`, which no native name can.
    expect((await native.request("join", { payload: { namespace: "randomchat/lobby" } }, ["peer_list"])).type).toBe("error");
    const waiting = await native.request("match", { payload: { namespace: "lobby", group_size: 2 } }, ["match", "matched"]);
    expect(waiting.payload?.["status"]).toBe("waiting");
    const a = await open(1);
    await a.waiting();
    await sleep(QUIET_MS);
    expect(a.matches()).toHaveLength(0);
    const b = await open(0);
    b.send("available");
    await expectPaired(a, b);
    expect(await native.nothing("matched", QUIET_MS)).toBe(true);
    // A native peer leaving is nothing to the pair; a user leaving is nothing to the namespace.
    native.close();
    expect(await watcher.next("peer_left")).toMatchObject({ namespace: "lobby" });
    a.client.close();
    await b.partnerLeft();
    expect(await watcher.nothing("peer_left", QUIET_MS)).toBe(true);
    await b.sync();
    expect(b.count("partner-left")).toBe(1);
  });

  /** Waits until the deployment's store counts `n` registered peers. */
  async function registeredCount(n: number): Promise<void> {
    await waitFor(() => getJson(`${deployment.sides[0].http}/stats`).then(({ body }) => body["total_peers"]), (total) => total === n, {
      timeoutMs: 10_000,
      what: `${n} registered peers`,
    });
  }
});

describe("random chat options (one process)", () => {
  const ORIGIN = "https://chat.example";
  const TOKEN = "s3cret-token";
  let server: ServerProcess;

  beforeAll(async () => {
    server = await startServer({
      config: {
        randomchat_max_msg_per_second: 5,
        randomchat_allowed_origins: [ORIGIN, "https://other.example"],
        randomchat_auth_token: TOKEN,
        randomchat_requeue_on_partner_leave: false,
      },
    });
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
  });
  afterEach(async () => {
    await closeEverything(server);
  });

  /** A user from the allowed origin that presented the token. */
  async function authorized(): Promise<User> {
    const user = await User.open(server, { Origin: ORIGIN });
    user.send("auth", { userId: "alice", token: TOKEN });
    return user;
  }

  it("closes a connection from an origin not listed with 1008, after accepting it", async () => {
    for (const headers of [undefined, { Origin: "https://evil.example" }, { Origin: "https://chat.example.evil" }]) {
      const client = await DialectClient.open(`${server.http.replace(/^http/, "ws")}/randomchat/ws`, { headers });
      opened.push(client);
      expect(await client.closed).toBe(POLICY_VIOLATION);
      expect(client.received).toEqual([]);
    }
    const listed = await User.open(server, { Origin: "https://other.example" });
    expect(listed.clientId).toMatch(UUID);
  });

  it("with a token configured: available before auth is UNAUTHORIZED, a right token is accepted silently, a wrong one closes with 1008", async () => {
    const a = await User.open(server, { Origin: ORIGIN });
    a.send("available");
    await a.sync();
    expect(a.errorCodes()).toEqual(["UNAUTHORIZED"]);
    a.send("auth", { userId: "alice", token: TOKEN });
    await a.sync();
    expect(a.client.received.map((message) => message["type"])).toEqual(["ready", "error", "pong", "pong"]);
    a.send("available"); // the fifth frame this second: randomchat_max_msg_per_second is 5
    const b = await authorized();
    b.send("available");
    await expectPaired(a, b);

    const intruder = await User.open(server, { Origin: ORIGIN });
    intruder.send("auth", { userId: "mallory", token: "wrong" });
    expect(await intruder.client.closed).toBe(POLICY_VIOLATION);
    expect(intruder.errorCodes()).toEqual(["UNAUTHORIZED"]);
  });

  it("answers RATE_LIMIT past randomchat_max_msg_per_second and forwards nothing over it; the socket stays", async () => {
    const a = await authorized();
    await sleep(1_100); // a full bucket: 5 frames
    for (let i = 0; i < 20; i++) a.send("ping");
    await waitFor(() => a.count("pong") + a.errorCodes().length, (count) => count >= 20, { timeoutMs: 5_000, what: "20 answers" });
    expect(a.count("pong")).toBeGreaterThanOrEqual(5);
    expect(a.count("pong")).toBeLessThanOrEqual(7); // 5 at once, and one more each 200 ms the burst took
    expect(a.errorCodes().every((code) => code === "RATE_LIMIT")).toBe(true);
    expect(a.errorCodes().length).toBe(20 - a.count("pong"));

    await sleep(1_100);
    await a.waiting();
    const b = await authorized();
    b.send("available");
    await expectPaired(a, b);
    await sleep(1_100);
    const refusedBefore = a.errorCodes().length;
    for (let i = 0; i < 20; i++) a.send("offer", { sdp: `v=0 #${i}` });
    await waitFor(() => a.errorCodes().length - refusedBefore, (count) => count >= 14, { timeoutMs: 5_000, what: "RATE_LIMIT errors" });
    await sleep(1_100);
    await a.sync(); // its offers went out before this pong
    await sleep(QUIET_MS);
    const relayed = b.client.ofType("offer");
    expect(relayed.length).toBeGreaterThanOrEqual(5);
    expect(relayed.length).toBeLessThanOrEqual(7);
    expect(relayed.length + a.errorCodes().length - refusedBefore).toBe(20);
    expect(a.errorCodes().slice(refusedBefore).every((code) => code === "RATE_LIMIT")).toBe(true);
    // The first offers went through, in order.
    expect(relayed.slice(0, 5).map((offer) => offer["sdp"])).toEqual(["v=0 #0", "v=0 #1", "v=0 #2", "v=0 #3", "v=0 #4"]);
  });

  it("with randomchat_requeue_on_partner_leave off, a user whose partner left waits only after sending available", async () => {
    const a = await authorized();
    await a.waiting();
    const b = await authorized();
    b.send("available");
    await expectPaired(a, b);
    a.send("next");
    await b.partnerLeft();
    await b.sync();
    const c = await authorized();
    c.send("available");
    await expectPaired(a, c, 2, 1);
    const d = await authorized();
    await d.waiting();
    await sleep(QUIET_MS);
    expect([b.matches().length, d.matches().length]).toEqual([1, 0]);
    b.send("available");
    await expectPaired(b, d, 2, 1);
  });
});

describe("random chat over the core's own budget (one process)", () => {
  let server: ServerProcess;

  beforeAll(async () => {
    server = await startServer({ config: { rate_limit_per_sec: 1, rate_limit_burst: 4 } });
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
  });
  afterEach(async () => {
    await closeEverything(server);
  });

  it("answers the core's rate limit (429) with RATE_LIMIT, and the socket stays", async () => {
    const a = await User.open(server);
    for (let i = 0; i < 10; i++) a.send("ping");
    await waitFor(() => a.count("pong") + a.errorCodes().length, (count) => count >= 10, { timeoutMs: 5_000, what: "10 answers" });
    expect(a.errorCodes().length).toBeGreaterThanOrEqual(5);
    expect(a.errorCodes().every((code) => code === "RATE_LIMIT")).toBe(true);
    await sleep(2_100);
    await a.sync();
  });
});
