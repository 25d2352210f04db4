import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { connectSio, connectWs, TRANSPORTS, type Envelope, type TestPeer } from "../helpers/peers.ts";
import { useServer } from "../helpers/use-server.ts";
import { expectError, outcome, serverTimestamp, unique } from "./messaging-support.ts";

/**
 * Malformed input gets error 400 and never costs the client its connection: after each bad
 * message the same connection still answers ping with pong (and can still register).
 */

const fixture = useServer();

const errorOrPong = (message: Envelope): boolean => message.type === "error" || message.type === "pong";

async function expectPong(peer: TestPeer): Promise<void> {
  expect(await outcome(peer, "ping")).toEqual({ type: "pong", ts: serverTimestamp() });
}

describe("/ws frames that are not a valid envelope", () => {
  const FRAMES: [string, string | Buffer, boolean][] = [
    ["truncated JSON", '{"type":"ping"', false],
    ["single-quoted pseudo-JSON", "{'type':'ping'}", false],
    ["plain text", "ping", false],
    ["an empty frame", "", false],
    ["an empty JSON array", "[]", false],
    ["a JSON array holding an envelope", '[{"type":"ping"}]', false],
    ["a JSON number", "42", false],
    ["a JSON string", '"ping"', false],
    ["JSON null", "null", false],
    ["JSON true", "true", false],
    ["an object without type", '{"payload":{"namespace":"x"}}', false],
    ["an empty object", "{}", false],
    ["a numeric type", '{"type":42}', false],
    ["a null type", '{"type":null}', false],
    ["an array type", '{"type":["ping"]}', false],
    ["an object type", '{"type":{"name":"ping"}}', false],
    ["a boolean type", '{"type":true}', false],
    ["an unknown type", '{"type":"teleport"}', false],
    ["a type differing only in case", '{"type":"PING"}', false],
    ["an empty type", '{"type":""}', false],
    ["type __proto__", '{"type":"__proto__"}', false],
    ["type constructor", '{"type":"constructor"}', false],
    ["type hasOwnProperty", '{"type":"hasOwnProperty"}', false],
    ["a binary frame holding a valid envelope", Buffer.from('{"type":"ping"}'), true],
    ["a binary frame of random bytes", randomBytes(64), true],
  ];

  it.each(FRAMES)("%s gets 400, before and after register, and the connection keeps working", async (_label, frame, binary) => {
    const client = fixture.track(await connectWs(fixture.server.ws));

    client.sendRaw(frame, binary);
    expect(await client.next(errorOrPong)).toMatchObject({ type: "error", payload: { code: 400 } });
    expect((await client.register()).type).toBe("registered");

    client.sendRaw(frame, binary);
    expect(await client.next(errorOrPong)).toMatchObject({ type: "error", payload: { code: 400 } });
    await expectPong(client);
  });

  it("answers a burst of bad frames one error each, in order, then still pongs", async () => {
    const client = await fixture.peer("ws");
    const socket = client as Awaited<ReturnType<typeof connectWs>>;
    for (const [, frame, binary] of FRAMES) socket.sendRaw(frame, binary);
    for (let index = 0; index < FRAMES.length; index++) {
      expect(await client.next(errorOrPong), FRAMES[index]?.[0]).toMatchObject({ type: "error", payload: { code: 400 } });
    }
    await expectPong(client);
    expect(await client.nothing("error")).toBe(true);
  });
});

describe.each(TRANSPORTS)("wrongly typed fields over %s", (transport) => {
  const ns = "typed-fields";
  const fingerprint = "ab".repeat(32);
  const CASES: [string, string, Record<string, unknown>][] = [
    ["join payload as a string", "join", { payload: "game-lobby" }],
    ["join payload as an array", "join", { payload: ["game-lobby"] }],
    ["join payload as a number", "join", { payload: 42 }],
    ["join namespace as a number", "join", { payload: { namespace: 42 } }],
    ["join namespace as an object", "join", { payload: { namespace: { name: ns } } }],
    ["join app_type as a number", "join", { payload: { namespace: ns, app_type: 5 } }],
    ["join version as a number", "join", { payload: { namespace: ns, version: 1 } }],
    ["join meta as a string", "join", { payload: { namespace: ns, meta: "skill=5" } }],
    ["leave namespace as a boolean", "leave", { payload: { namespace: true } }],
    ["discover namespace as an array", "discover", { payload: { namespace: [ns] } }],
    ["discover limit as a string", "discover", { payload: { namespace: ns, limit: "10" } }],
    ["signal payload as a string", "signal", { to: "somebody", payload: "v=0\r\n" }],
    ["signal to as a number", "signal", { to: 123, payload: {} }],
    ["relay to as an object", "relay", { to: { fingerprint }, payload: {} }],
    ["broadcast payload as a string", "broadcast", { payload: "hello" }],
    ["broadcast exclude as a string", "broadcast", { payload: { namespace: ns, data: 1, exclude: fingerprint } }],
    ["match group_size as a string", "match", { payload: { namespace: ns, group_size: "2" } }],
    ["match group_size as a fraction", "match", { payload: { namespace: ns, group_size: 2.5 } }],
    ["match criteria as a string", "match", { payload: { namespace: ns, group_size: 2, criteria: "ranked" } }],
    ["match criteria with a nested object", "match", { payload: { namespace: ns, group_size: 2, criteria: { mode: { ranked: true } } } }],
    ["match_cancel namespace as a number", "match_cancel", { payload: { namespace: 5 } }],
    ["create_room room_id as a number", "create_room", { payload: { room_id: 5 } }],
    ["create_room max_size as a string", "create_room", { payload: { max_size: "10" } }],
    ["join_room room_id as null", "join_room", { payload: { room_id: null } }],
    ["room_info room_id as an array", "room_info", { payload: { room_id: ["r"] } }],
    ["kick fingerprint as a number", "kick", { payload: { room_id: "r", fingerprint: 5 } }],
    ["metadata meta as a string", "metadata", { payload: { meta: "level=2" } }],
    ["metadata payload as a number", "metadata", { payload: 7 }],
  ];

  it.each(CASES)("%s gets 400 and the connection keeps working", async (_label, type, fields) => {
    const client = await fixture.peer(transport);
    await expectError(client, type, fields, 400);
    await expectPong(client);
  });

  it("a refused join leaves no trace: the peer is not a member", async () => {
    const namespace = unique("untouched");
    const client = await fixture.peer(transport);
    await expectError(client, "join", { payload: { namespace, app_type: 5 } }, 400);
    expect((await outcome(client, "discover", { payload: { namespace } })).payload).toEqual({ namespace, peers: [], total: 0 });
  });
});

describe("Socket.IO events that are not a valid request", () => {
  async function sio(register: boolean): Promise<Awaited<ReturnType<typeof connectSio>>> {
    const client = fixture.track(await connectSio(fixture.server.http));
    if (register) expect((await client.register()).type).toBe("registered");
    return client;
  }

  const BAD_CALLS: [string, string, unknown[]][] = [
    ["an unknown event", "teleport", [{}]],
    ["an event named constructor", "constructor", [{}]],
    ["a string argument", "ping", ["hello"]],
    ["a number argument", "ping", [42]],
    ["a boolean argument", "ping", [true]],
    ["an array argument", "ping", [[{ payload: {} }]]],
    ["a binary argument", "ping", [Buffer.from('{"type":"ping"}')]],
    ["two object arguments", "ping", [{}, {}]],
    ["a string then an object", "ping", ["x", {}]],
  ];

  describe.each([false, true])("registered: %s", (register) => {
    it.each(BAD_CALLS)("%s gets 400 as an ack, then the connection keeps working", async (_label, event, args) => {
      const client = await sio(register);
      const reply = await client.socket.timeout(5_000).emitWithAck(event, ...args);
      expect(reply).toMatchObject({ type: "error", payload: { code: 400 } });
      if (register) await expectPong(client);
      else expect((await client.register()).type).toBe("registered");
      expect(await client.nothing("error")).toBe(true);
    });

    it.each(BAD_CALLS)("%s gets 400 as an error event without an ack, then the connection keeps working", async (_label, event, args) => {
      const client = await sio(register);
      client.socket.emit(event, ...args);
      expect(await client.next(errorOrPong)).toMatchObject({ type: "error", payload: { code: 400 } });
      if (register) await expectPong(client);
      else expect((await client.register()).type).toBe("registered");
    });
  });

  it("refuses binary data nested in an envelope (400) and delivers nothing: raw-ws members could not receive it", async () => {
    const namespace = unique("binary");
    const client = await sio(true);
    await client.join(namespace);
    const wsMember = await fixture.peer("ws", { namespace });
    const sioMember = await fixture.peer("sio", { namespace });
    const blob = Buffer.from([0, 1, 2, 250]);
    const attempts: [string, Record<string, unknown>][] = [
      ["broadcast", { payload: { namespace, data: { blob } } }],
      ["signal", { to: wsMember.fingerprint, payload: { signal_type: "offer", sdp: blob } }],
      ["relay", { to: sioMember.fingerprint, payload: { nested: [{ blob }] } }],
    ];
    for (const [event, body] of attempts) {
      expect(await client.socket.timeout(5_000).emitWithAck(event, body), event).toMatchObject({ type: "error", payload: { code: 400 } });
      client.socket.emit(event, body);
      expect(await client.next(errorOrPong), event).toMatchObject({ type: "error", payload: { code: 400 } });
    }
    await expectPong(client);
    const delivered = (message: Envelope): boolean => ["broadcast", "signal", "relay"].includes(message.type);
    expect(await Promise.all([wsMember.nothing(delivered), sioMember.nothing(delivered)])).toEqual([true, true]);
  });

  it("refuses a non-object register argument, then registers normally", async () => {
    const client = await sio(false);
    expect(await client.socket.timeout(5_000).emitWithAck("register", "my-public-key")).toMatchObject({ type: "error", payload: { code: 400 } });
    expect((await client.register()).type).toBe("registered");
    await expectPong(client);
  });
});
