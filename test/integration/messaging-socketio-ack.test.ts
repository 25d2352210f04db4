import { describe, expect, it } from "vitest";
import { connectSio, sha256, type TestPeer } from "../helpers/peers.ts";
import { useServer } from "../helpers/use-server.ts";
import { entryOf, serverTimestamp, unique } from "./messaging-support.ts";

/**
 * Socket.IO acknowledgements: with an ack callback the direct reply (or error) goes to the
 * callback as the full envelope, type included, and operations with no direct reply ack
 * `{type:"ok", payload:{ref}}`; without a callback the same replies arrive as events.
 */

// A closed peer departs at once here (resume_grace 0): resume has its own tests (resume.test.ts).
const fixture = useServer({ config: { resume_grace: 0 } });

async function sio(): Promise<Awaited<ReturnType<typeof connectSio>>> {
  return fixture.track(await connectSio(fixture.server.http));
}

const wsMember = (namespace: string): Promise<TestPeer> => fixture.peer("ws", { namespace });

/** Anything at all arriving as an event. */
const anyEvent = (): boolean => true;

describe("Socket.IO with an ack callback", () => {
  it("acks direct replies as full envelopes with type, and does not also emit them", async () => {
    const client = await sio();
    const publicKey = unique("key");
    const alias = unique("acker");
    const fingerprint = sha256(publicKey);
    const ack = (event: string, body: unknown): Promise<unknown> => client.socket.timeout(5_000).emitWithAck(event, body);

    expect(await ack("register", { payload: { public_key: publicKey, alias } })).toEqual({
      type: "registered",
      from: fingerprint,
      payload: { fingerprint, alias, verified: false },
    });
    client.fingerprint = fingerprint;
    client.alias = alias;
    const namespace = unique("acks");
    expect(await ack("join", { payload: { namespace, app_type: "t" } })).toEqual({
      type: "peer_list",
      namespace,
      payload: { namespace, peers: [entryOf(client, "t")], total: 1 },
    });
    expect(await ack("discover", { payload: { namespace, limit: 5 } })).toEqual({
      type: "peer_list",
      namespace,
      payload: { namespace, peers: [entryOf(client, "t")], total: 1 },
    });
    expect(await ack("ping", {})).toEqual({ type: "pong", ts: serverTimestamp() });
    expect(await client.nothing(anyEvent)).toBe(true);
  });

  it("acks leave, signal, relay, broadcast and metadata with {type:'ok', payload:{ref}} and still performs them", async () => {
    const namespace = unique("ok");
    const target = await wsMember(namespace);
    const client = await sio();
    await client.register();
    await client.join(namespace);
    await target.next("peer_joined");
    const ack = (event: string, body: unknown): Promise<unknown> => client.socket.timeout(5_000).emitWithAck(event, body);

    expect(await ack("signal", { to: target.fingerprint, payload: { signal_type: "offer", sdp: "v=0" } })).toEqual({ type: "ok", payload: { ref: "signal" } });
    expect((await target.next("signal")).payload).toEqual({ signal_type: "offer", sdp: "v=0" });
    expect(await ack("relay", { to: target.alias, payload: { n: 1 } })).toEqual({ type: "ok", payload: { ref: "relay" } });
    expect((await target.next("relay")).payload).toEqual({ n: 1 });
    expect(await ack("broadcast", { payload: { namespace, data: "hi" } })).toEqual({ type: "ok", payload: { ref: "broadcast" } });
    expect((await target.next("broadcast")).payload).toEqual({ namespace, data: "hi" });
    expect(await ack("metadata", { payload: { meta: { mood: "fine" } } })).toEqual({ type: "ok", payload: { ref: "metadata" } });
    expect(await ack("discover", { payload: { namespace } })).toMatchObject({ payload: { peers: [entryOf(target), entryOf(client, "", { mood: "fine" })] } });
    expect(await ack("leave", { payload: { namespace } })).toEqual({ type: "ok", payload: { ref: "leave" } });
    expect(await target.next("peer_left")).toMatchObject({ from: client.fingerprint, namespace });
    expect(await client.nothing(anyEvent)).toBe(true);
  });

  it("acks errors as error envelopes with code and ref, and does not also emit them", async () => {
    const client = await sio();
    const ack = (event: string, body: unknown): Promise<unknown> => client.socket.timeout(5_000).emitWithAck(event, body);
    expect(await ack("join", { payload: { namespace: "x" } })).toEqual({ type: "error", payload: { code: 400, message: expect.any(String), ref: "join" } });
    await client.register();
    expect(await ack("join", { payload: { namespace: "no spaces allowed" } })).toEqual({
      type: "error",
      payload: { code: 400, message: expect.any(String), ref: "join" },
    });
    expect(await ack("leave", { payload: { namespace: unique("never") } })).toMatchObject({ type: "error", payload: { code: 404, ref: "leave" } });
    expect(await ack("signal", { to: unique("ghost"), payload: {} })).toMatchObject({ type: "error", payload: { code: 404, ref: "signal" } });
    expect(await client.nothing(anyEvent)).toBe(true);
  });
});

describe("Socket.IO without an ack callback", () => {
  it("delivers direct replies and errors as events named by their type", async () => {
    const client = await sio();
    const publicKey = unique("key");
    const fingerprint = sha256(publicKey);
    client.send("ping", {});
    expect(await client.next("error")).toMatchObject({ type: "error", payload: { code: 400, ref: "ping" } });

    client.send("register", { payload: { public_key: publicKey } });
    const registered = await client.next("registered");
    expect(registered).toEqual({ type: "registered", from: fingerprint, payload: { fingerprint, alias: expect.any(String), verified: false } });
    client.fingerprint = fingerprint;
    client.alias = String(registered.payload?.["alias"]);

    const namespace = unique("events");
    client.send("join", { payload: { namespace } });
    expect(await client.next("peer_list")).toEqual({ type: "peer_list", namespace, payload: { namespace, peers: [entryOf(client)], total: 1 } });
    client.send("discover", { payload: { namespace: unique("empty") } });
    expect(await client.next("peer_list")).toMatchObject({ payload: { peers: [], total: 0 } });
    client.send("ping", {});
    expect(await client.next("pong")).toEqual({ type: "pong", ts: serverTimestamp() });
    client.send("leave", { payload: { namespace: unique("never") } });
    expect(await client.next("error")).toMatchObject({ payload: { code: 404, ref: "leave" } });
  });

  it("sends nothing back for a successful operation that has no direct reply", async () => {
    const namespace = unique("silent");
    const target = await wsMember(namespace);
    const client = await sio();
    await client.register();
    await client.join(namespace);
    client.send("signal", { to: target.fingerprint, payload: { signal_type: "candidate", candidate: {} } });
    client.send("metadata", { payload: { meta: { a: 1 } } });
    client.send("broadcast", { payload: { namespace, data: 1 } });
    await target.next("signal");
    await target.next("broadcast");
    expect(await client.nothing(anyEvent)).toBe(true);
  });
});
