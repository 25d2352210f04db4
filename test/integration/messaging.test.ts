import { describe, expect, it } from "vitest";
import { sha256, TRANSPORTS, type Envelope, type TestPeer, type Transport } from "../helpers/peers.ts";
import { useServer } from "../helpers/use-server.ts";
import { entryOf, expectError, expectOk, otherTransport, outcome, serverTimestamp, unique } from "./messaging-support.ts";

/** register, join/leave, discover, metadata and ping over both transports (and mixed). */

// A closed peer departs at once here (resume_grace 0): resume has its own tests (resume.test.ts).
const fixture = useServer({ config: { resume_grace: 0 } });

/** Connects without registering; closed after the test. */
const fresh = (transport: Transport): Promise<TestPeer> => fixture.connect(transport);

/** Connects and registers; optionally joins. Closed after the test. */
const peer = (transport: Transport, options: { alias?: string; namespace?: string } = {}): Promise<TestPeer> => fixture.peer(transport, options);

const GENERATED_ALIAS = /^[a-z]+-[a-z]+-(0[1-9]|[1-9][0-9])$/;

describe.each(TRANSPORTS)("register over %s", (transport) => {
  const other = otherTransport(transport);

  it("replies registered with fingerprint = sha256(public_key) and a generated adjective-noun-NN alias", async () => {
    const client = await fresh(transport);
    const publicKey = `-----BEGIN PUBLIC KEY-----\nMFkw ключ 🔑 ${unique("k")}\n-----END PUBLIC KEY-----`;
    const reply = await client.register({ publicKey });
    const fingerprint = sha256(publicKey);
    expect(fingerprint).toMatch(/^[0-9a-f]{64}$/);
    expect(reply).toEqual({ type: "registered", from: fingerprint, payload: { fingerprint, alias: expect.stringMatching(GENERATED_ALIAS), verified: false } });
  });

  it("grants a requested alias exactly, up to 32 characters of [A-Za-z0-9_-]", async () => {
    const alias = unique("Al_i-ce");
    expect((await (await fresh(transport)).register({ alias })).payload).toMatchObject({ alias });
    const longest = `Z_-${unique("x")}`.padEnd(32, "9");
    expect(longest).toHaveLength(32);
    expect((await (await fresh(transport)).register({ alias: longest })).payload).toMatchObject({ alias: longest });
  });

  it("refuses an alias held by another peer with 409, and the connection can still register", async () => {
    const holder = await peer(other, { alias: unique("taken") });
    const client = await fresh(transport);
    expect((await client.register({ alias: holder.alias })).payload).toMatchObject({ code: 409, ref: "register" });
    // A generated alias is just as taken.
    const generatedHolder = await peer(other);
    expect((await client.register({ alias: generatedHolder.alias })).payload).toMatchObject({ code: 409, ref: "register" });
    const reply = await client.register();
    expect(reply.type).toBe("registered");
    expect(client.alias).not.toBe(holder.alias);
    expect(client.alias).not.toBe(generatedHolder.alias);
  });

  it.each([
    ["a space", "bad alias"],
    ["a dot", "bad.alias"],
    ["a slash", "bad/alias"],
    ["non-ASCII letters", "ålias"],
    ["33 characters", "a".repeat(33)],
    ["64 lowercase hex characters", "ab".repeat(32)],
    ["64 uppercase hex characters", "AB".repeat(32)],
    ["a number", 42],
  ])("refuses an alias with %s (400), and the connection can still register", async (_label, alias) => {
    const client = await fresh(transport);
    const reply = await client.request("register", { payload: { public_key: unique("key"), alias } }, ["registered"]);
    expect(reply).toMatchObject({ type: "error", payload: { code: 400, ref: "register" } });
    expect((await client.register()).type).toBe("registered");
  });

  it.each([
    ["missing", {}],
    ["a number", { public_key: 12345 }],
    ["null", { public_key: null }],
    ["an object", { public_key: { kty: "EC" } }],
    ["the empty string", { public_key: "" }],
  ])("refuses a public_key that is %s (400)", async (_label, payload) => {
    const client = await fresh(transport);
    const reply = await client.request("register", { payload }, ["registered"]);
    expect(reply).toMatchObject({ type: "error", payload: { code: 400, ref: "register" } });
    expect((await client.register()).type).toBe("registered");
  });

  it.each([
    ["a string", "Player1"],
    ["an array", ["Player1"]],
    ["over 4096 bytes", { bio: "x".repeat(4089) }],
  ])("refuses register meta that is %s (400)", async (_label, meta) => {
    const client = await fresh(transport);
    const reply = await client.request("register", { payload: { public_key: unique("key"), meta } }, ["registered"]);
    expect(reply).toMatchObject({ type: "error", payload: { code: 400, ref: "register" } });
    // {"bio":"<n chars>"} serializes to n + 10 bytes: exactly 4096 is allowed.
    expect((await client.register({ meta: { bio: "y".repeat(4086) } })).type).toBe("registered");
  });

  it("refuses a second register with 400 and keeps the first identity", async () => {
    const namespace = unique("reg2");
    const client = await peer(transport);
    const first = { fingerprint: client.fingerprint, alias: client.alias };
    const reply = await client.request("register", { payload: { public_key: unique("other-key"), alias: unique("other") } }, ["registered"]);
    expect(reply).toMatchObject({ type: "error", payload: { code: 400, ref: "register" } });
    const list = await client.join(namespace);
    expect(list.payload?.["peers"]).toEqual([{ ...first, app_type: "", meta: {}, verified: false }]);
  });

  it("answers anything sent before register with 400, keeps the connection, then registers", async () => {
    const client = await fresh(transport);
    const namespace = unique("early");
    const early: [string, Record<string, unknown>][] = [
      ["ping", {}],
      ["join", { payload: { namespace } }],
      ["discover", { payload: { namespace } }],
      ["signal", { to: "someone", payload: { signal_type: "offer" } }],
      ["metadata", { payload: { meta: { a: 1 } } }],
    ];
    for (const [type, fields] of early) {
      // Not outcome(): its trailing ping would be refused too.
      const reply = await client.request(type, fields, ["pong", "peer_list"]);
      expect(reply, type).toMatchObject({ type: "error", payload: { code: 400, ref: type } });
    }
    expect((await client.register()).type).toBe("registered");
    const list = await client.join(namespace);
    expect(list.payload).toEqual({ namespace, peers: [entryOf(client)], total: 1 });
  });

  it("frees an alias when its holder disconnects, so a new peer can take it", async () => {
    const namespace = unique("free");
    const alias = unique("reuse");
    const observer = await peer(other, { namespace });
    const holder = await peer(transport, { alias, namespace });
    holder.close();
    expect(await observer.next("peer_left")).toMatchObject({ from: holder.fingerprint, namespace });
    const taker = await fresh(other);
    const reply = await taker.register({ alias });
    expect(reply).toMatchObject({ type: "registered", payload: { alias } });
    expect(taker.fingerprint).not.toBe(holder.fingerprint);
  });
});

describe.each(TRANSPORTS)("join and leave, joiner over %s", (transport) => {
  const other = otherTransport(transport);

  it("announces peer_joined (with app_type and meta) to members and gives the joiner a peer_list with total", async () => {
    const namespace = unique("lobby");
    const first = await peer(other);
    const firstList = await first.join(namespace, { app_type: "chat", meta: { x: 1 } });
    expect(firstList).toMatchObject({ type: "peer_list", namespace, payload: { namespace, peers: [entryOf(first, "chat", { x: 1 })], total: 1 } });

    const joiner = await peer(transport);
    const list = await joiner.join(namespace, { app_type: "fps-game", version: "1.0.0", meta: { skill_level: 5 } });
    expect(list).toMatchObject({ type: "peer_list", namespace });
    expect(list.payload).toEqual({
      namespace,
      peers: [entryOf(first, "chat", { x: 1 }), entryOf(joiner, "fps-game", { skill_level: 5 })],
      total: 2,
    });

    const joined = await first.next("peer_joined");
    expect(joined).toMatchObject({ type: "peer_joined", from: joiner.fingerprint, namespace });
    expect(joined.payload).toEqual(entryOf(joiner, "fps-game", { skill_level: 5 }));
    expect(await joiner.nothing("peer_joined")).toBe(true);
  });

  it("treats a second join as idempotent: the same list, and no second peer_joined", async () => {
    const namespace = unique("twice");
    const member = await peer(other, { namespace });
    const joiner = await peer(transport);
    const once = await joiner.join(namespace, { app_type: "a" });
    await member.next("peer_joined");
    const twice = await joiner.join(namespace, { app_type: "a" });
    expect(twice.payload).toEqual(once.payload);
    expect(twice.payload?.["total"]).toBe(2);
    expect(await member.nothing("peer_joined")).toBe(true);
  });

  it("lists at most 50 peers, oldest first, with the full total; discover pages by limit", async () => {
    const namespace = unique("crowd");
    const crowd: TestPeer[] = [];
    for (let index = 0; index < 59; index++) {
      crowd.push(await peer(index % 2 === 0 ? "ws" : "sio", { namespace }));
    }
    const last = await peer(transport);
    const list = await last.join(namespace);
    const expected = [...crowd, last].map((member) => entryOf(member));
    expect(list.payload?.["total"]).toBe(60);
    expect(list.payload?.["peers"]).toEqual(expected.slice(0, 50));

    const byDefault = await outcome(last, "discover", { payload: { namespace } });
    expect(byDefault).toMatchObject({ type: "peer_list", namespace });
    expect(byDefault.payload).toEqual({ namespace, peers: expected.slice(0, 50), total: 60 });
    const seven = await outcome(last, "discover", { payload: { namespace, limit: 7 } });
    expect(seven.payload).toEqual({ namespace, peers: expected.slice(0, 7), total: 60 });
    const huge = await outcome(last, "discover", { payload: { namespace, limit: 1_000_000 } });
    expect(huge.payload).toEqual({ namespace, peers: expected, total: 60 });
  });

  it("sends peer_left to the others on leave; leaving again (or a namespace never joined) is 404", async () => {
    const namespace = unique("leave");
    const a = await peer(other, { namespace });
    const c = await peer(transport, { namespace });
    const leaver = await peer(transport, { namespace });
    await a.next((m) => m.type === "peer_joined" && m.from === leaver.fingerprint);
    await c.next((m) => m.type === "peer_joined" && m.from === leaver.fingerprint);

    await expectOk(leaver, "leave", { payload: { namespace } });
    for (const member of [a, c]) {
      const left = await member.next("peer_left");
      expect(left).toMatchObject({ type: "peer_left", from: leaver.fingerprint, namespace });
    }
    expect(await leaver.nothing("peer_left")).toBe(true);
    const after = await outcome(a, "discover", { payload: { namespace } });
    expect(after.payload).toEqual({ namespace, peers: [entryOf(a), entryOf(c)], total: 2 });

    await expectError(leaver, "leave", { payload: { namespace } }, 404);
    await expectError(leaver, "leave", { payload: { namespace: unique("never") } }, 404);
    expect(await a.nothing("peer_left")).toBe(true);

    const back = await leaver.join(namespace);
    expect(back.payload).toEqual({ namespace, peers: [entryOf(a), entryOf(c), entryOf(leaver)], total: 3 });
    const rejoined = (m: Envelope): boolean => m.type === "peer_joined" && m.from === leaver.fingerprint;
    expect(await a.next(rejoined)).toMatchObject({ namespace, payload: entryOf(leaver) });
    expect(await c.next(rejoined)).toMatchObject({ namespace, payload: entryOf(leaver) });
  });

  it.each([
    ["empty", ""],
    ["65 characters", "n".repeat(65)],
    ["a space", "game lobby"],
    ["a slash", "game/lobby"],
    ["non-ASCII", "lobby-ü"],
    ["a number", 42],
    ["null", null],
    ["missing", undefined],
  ])("refuses a namespace name that is %s (400) for join, leave, discover and broadcast", async (_label, name) => {
    const client = await peer(transport);
    const payload = name === undefined ? {} : { namespace: name };
    await expectError(client, "join", { payload }, 400);
    await expectError(client, "leave", { payload }, 400);
    await expectError(client, "discover", { payload }, 400);
    await expectError(client, "broadcast", { payload: { ...payload, data: 1 } }, 400);
  });

  it("accepts a 64-character name and every allowed punctuation mark", async () => {
    const client = await peer(transport);
    for (const namespace of [`${unique("n")}`.padEnd(64, "x"), `${unique("Ab")}.c:d-e_9`]) {
      const list = await client.join(namespace);
      expect(list.payload).toEqual({ namespace, peers: [entryOf(client)], total: 1 });
    }
  });
});

describe.each(TRANSPORTS)("discover over %s", (transport) => {
  it("gives an empty list with total 0 for an unknown namespace", async () => {
    const client = await peer(transport);
    const namespace = unique("nobody");
    const reply = await outcome(client, "discover", { payload: { namespace } });
    expect(reply).toMatchObject({ type: "peer_list", namespace });
    expect(reply.payload).toEqual({ namespace, peers: [], total: 0 });
  });

  it("lets a non-member discover a public namespace", async () => {
    const namespace = unique("public");
    const member = await peer(otherTransport(transport));
    await member.join(namespace, { app_type: "radio" });
    const outsider = await peer(transport);
    const reply = await outcome(outsider, "discover", { payload: { namespace, limit: 10 } });
    expect(reply.payload).toEqual({ namespace, peers: [entryOf(member, "radio")], total: 1 });
  });

  it.each([
    ["negative", -5],
    ["a string", "10"],
    ["a fraction", 2.5],
  ])("refuses a limit that is %s (400)", async (_label, limit) => {
    const client = await peer(transport);
    await expectError(client, "discover", { payload: { namespace: unique("lim"), limit } }, 400);
  });
});

describe.each(TRANSPORTS)("metadata over %s", (transport) => {
  it("merges shallowly, deletes keys set to null, and later peer lists and discover show it", async () => {
    const namespace = unique("meta");
    const client = await fresh(transport);
    await client.register({ meta: { name: "Player1", avatar: "warrior", level: 1 } });
    await client.join(namespace);
    await expectOk(client, "metadata", { payload: { meta: { level: 2, avatar: null, gear: { sword: true } } } });
    const meta = { name: "Player1", level: 2, gear: { sword: true } };

    const viewer = await peer(otherTransport(transport));
    const list = await viewer.join(namespace);
    expect(list.payload?.["peers"]).toEqual([entryOf(client, "", meta), entryOf(viewer)]);
    const found = await outcome(viewer, "discover", { payload: { namespace } });
    expect(found.payload?.["peers"]).toEqual([entryOf(client, "", meta), entryOf(viewer)]);
  });

  it("refuses meta over 4096 serialized bytes (400) and keeps the old meta", async () => {
    const namespace = unique("big");
    const client = await peer(transport, { namespace });
    // {"k":"<n chars>"} serializes to n + 8 bytes: exactly 4096 is allowed.
    await expectOk(client, "metadata", { payload: { meta: { k: "x".repeat(4088) } } });
    await expectOk(client, "metadata", { payload: { meta: { k: "small" } } });
    await expectError(client, "metadata", { payload: { meta: { k: "x".repeat(4089) } } }, 400);
    // Each patch fits, but the merged result would not.
    await expectOk(client, "metadata", { payload: { meta: { a: "y".repeat(2500) } } });
    await expectError(client, "metadata", { payload: { meta: { b: "z".repeat(2500) } } }, 400);
    const found = await outcome(client, "discover", { payload: { namespace } });
    expect(found.payload?.["peers"]).toEqual([entryOf(client, "", { k: "small", a: "y".repeat(2500) })]);
  });

  it.each([
    ["missing", {}],
    ["a string", { meta: "level=2" }],
    ["an array", { meta: [1, 2] }],
  ])("refuses meta that is %s (400)", async (_label, payload) => {
    const client = await peer(transport);
    await expectError(client, "metadata", { payload }, 400);
  });
});

describe.each(TRANSPORTS)("ping over %s", (transport) => {
  it("answers ping with pong carrying a server timestamp", async () => {
    const client = await peer(transport);
    const reply = await outcome(client, "ping");
    expect(reply).toEqual({ type: "pong", ts: serverTimestamp() });
  });
});
