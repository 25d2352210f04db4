import { randomUUID } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { connectSio, type Envelope } from "../helpers/peers.ts";
import { ackArgument, RawSocketIo } from "../helpers/raw-socket-io.ts";
import { useServer } from "../helpers/use-server.ts";

/**
 * Socket.IO packets that are not a valid request (reserved or non-string event names, malformed
 * packets, binary attachments, ack ids out of range) get error 400 and never cost the client its
 * connection: it is answered as an ack when the packet carried a usable ack id, otherwise as an
 * `error` event, and the next ping on the same connection still gets its pong. Sent over a plain
 * WebSocket speaking Engine.IO 4 / Socket.IO 5, since socket.io-client refuses to send most of them.
 */

const MAX_MESSAGE_SIZE = 1024;
const fixture = useServer({ config: { max_message_size: MAX_MESSAGE_SIZE } });

/** A binary attachment's placeholder, as socket.io-parser writes it. */
const placeholder = (num: number): string => `{"_placeholder":true,"num":${num}}`;

const isError = (packet: string): boolean => packet.startsWith('2["error",');
const errorEvent = (packet: string): Envelope => ({ type: "error", ...(JSON.parse(packet.slice(1)) as [string, Record<string, unknown>])[1] });

let open: RawSocketIo[] = [];
afterEach(() => {
  for (const client of open) client.close();
  open = [];
});

/** A raw client connected and registered, with what it received so far forgotten. */
async function rawClient(): Promise<RawSocketIo> {
  const client = await RawSocketIo.connect(fixture.server.port);
  open.push(client);
  const registered = await client.request("register", { payload: { public_key: `key-${randomUUID()}` } });
  expect(registered).toMatchObject({ type: "registered" });
  client.packets.length = 0;
  return client;
}

/** How a bad input is answered: an ack to this id, or an `error` event. */
type Answer = { ack: number } | "event";

const BINARY = Buffer.from([0, 1, 2, 250]);

const CASES: [string, (string | Buffer)[], Answer[]][] = [
  // Event names socket.io-parser reserves (its decoder throws on them) and the ones it does not.
  ['"disconnect"', ['2["disconnect",{}]'], ["event"]],
  ['"disconnect" with an ack id', ['25["disconnect",{}]'], [{ ack: 5 }]],
  ['"connect"', ['2["connect",{}]'], ["event"]],
  ['"connect_error"', ['2["connect_error",{}]'], ["event"]],
  ['"disconnecting"', ['2["disconnecting",{}]'], ["event"]],
  ['"newListener"', ['2["newListener",{}]'], ["event"]],
  ['"removeListener" with an ack id', ['26["removeListener",{}]'], [{ ack: 6 }]],
  ['"error"', ['2["error",{}]'], ["event"]],
  ['"error" with an ack id', ['23["error",{}]'], [{ ack: 3 }]],
  ["the server's private event name", ['2["peer-server:bad-packet","forged"]'], ["event"]],
  ["a numeric event name", ["2[42,{}]"], ["event"]],
  ["an event without data", ["2"], ["event"]],
  ["an event with only an ack id", ["27"], [{ ack: 7 }]],
  // Malformed packets.
  ["invalid JSON", ['2["ping",{'], ["event"]],
  ["invalid JSON with an ack id", ['28["ping",{'], [{ ack: 8 }]],
  ["an object payload", ['2{"type":"ping"}'], ["event"]],
  ["a string payload", ['2"ping"'], ["event"]],
  ["an empty array payload", ["2[]"], ["event"]],
  ["an unknown packet type digit", ['9["ping",{}]'], ["event"]],
  ["an empty message", [""], ["event"]],
  ["a CONNECT_ERROR packet", ['4{"message":"no"}'], ["event"]],
  ["a DISCONNECT packet with data", ["1{}"], ["event"]],
  ["zero attachments", ['50-["ping",{}]'], ["event"]],
  ["a non-numeric attachment count", ['5x-["ping",{}]'], ["event"]],
  ["a binary event without its dash", ['51["ping",{}]'], ["event"]],
  ["too many attachments", [`511-9["ping",${placeholder(0)}]`], [{ ack: 9 }]],
  ["binary data with no binary packet before it", [BINARY], ["event"]],
  // A text packet before the last attachment: the binary event is refused, the text decoded as usual.
  ["plain text while attachments are awaited", [`52-6["ping",${placeholder(0)},${placeholder(1)}]`, BINARY, '2["connect",{}]'], [{ ack: 6 }, "event"]],
  ["an attachment after an interrupted binary packet", [`52-6["ping",${placeholder(0)},${placeholder(1)}]`, BINARY, '2["connect",{}]', BINARY], [{ ack: 6 }, "event", "event"]],
  // Binary attachments: the protocol is JSON.
  ["a binary event with an ack id", [`51-7["ping",${placeholder(0)}]`, BINARY], [{ ack: 7 }]],
  ["a binary event without an ack id", [`51-["ping",${placeholder(0)}]`, BINARY], ["event"]],
  ["a binary event with two attachments", [`52-4["relay",{"to":"x","payload":[${placeholder(0)},${placeholder(1)}]}]`, BINARY, BINARY], [{ ack: 4 }]],
  ["two binary events in a row", [`51-1["ping",${placeholder(0)}]`, BINARY, `51-2["ping",${placeholder(0)}]`, BINARY], [{ ack: 1 }, { ack: 2 }]],
  ["a binary ack", [`61-3[${placeholder(0)}]`, BINARY], ["event"]],
  // Ack ids that would not come back as the same number.
  ["a 32-digit ack id", ['2123456789012345678901234567890["ping",{}]'], ["event"]],
  ["ack id 2^31", ['22147483648["ping",{}]'], ["event"]],
  ["a 400-digit ack id", [`2${"9".repeat(400)}["ping",{}]`], ["event"]],
];

describe("raw Socket.IO packets that are not a valid request", () => {
  it.each(CASES)("%s gets 400 and the connection keeps working", async (_label, frames, answers) => {
    const client = await rawClient();
    for (const frame of frames) client.send(frame);
    const pong = await client.request("ping", {});
    expect(pong).toMatchObject({ type: "pong" });
    expect(client.open).toBe(true);

    // Everything received before the pong: exactly one 400 per bad input, in order, and no ack
    // except the ones expected (an out-of-range id is never echoed).
    const before = client.packets.slice(0, -1);
    expect(before).toHaveLength(answers.length);
    answers.forEach((answer, index) => {
      const packet = before[index] ?? "";
      if (answer === "event") expect(isError(packet), packet).toBe(true);
      const error = answer === "event" ? errorEvent(packet) : ackArgument(packet, answer.ack);
      expect(error, packet).toMatchObject({ type: "error", payload: { code: 400 } });
    });
  });

  it("ack id 2^31-1 is the largest echoed", async () => {
    const client = await rawClient();
    const reply = client.next((packet) => packet.startsWith("32147483647["));
    client.send('22147483647["ping",{}]');
    expect(ackArgument(await reply, 2147483647)).toMatchObject({ type: "pong" });
  });

  it("a burst of every bad input answers each in order, then still pongs", async () => {
    const client = await rawClient();
    let expected = 0;
    for (const [, frames, answers] of CASES) {
      for (const frame of frames) client.send(frame);
      expected += answers.length;
    }
    expect(await client.request("ping", {})).toMatchObject({ type: "pong" });
    const before = client.packets.slice(0, -1);
    expect(before).toHaveLength(expected);
    for (const packet of before) {
      const error = isError(packet) ? errorEvent(packet) : ackArgument(packet, Number(/^3(\d+)\[/.exec(packet)?.[1]));
      expect(error, packet).toMatchObject({ type: "error", payload: { code: 400 } });
    }
  });
});

describe("what socket.io itself still closes", () => {
  async function engineOnly(): Promise<{ socket: WebSocket; closed: Promise<number> }> {
    const socket = new WebSocket(`ws://127.0.0.1:${fixture.server.port}/socket.io/?EIO=4&transport=websocket`);
    const closed = new Promise<number>((resolve) => socket.on("close", (code) => resolve(code)));
    await new Promise<void>((resolve, reject) => {
      socket.once("message", () => resolve()); // the Engine.IO open packet
      socket.once("error", reject);
    });
    return { socket, closed };
  }

  it("a packet before the Socket.IO CONNECT closes the connection", async () => {
    const { socket, closed } = await engineOnly();
    socket.send('42["disconnect",{}]');
    expect(await closed).toBeGreaterThan(0);
  });

  it("a packet for a namespace the client did not join closes the connection", async () => {
    const client = await rawClient();
    client.send('2/admin,1["ping",{}]');
    expect(await client.closed).toBeGreaterThan(0);
  });
});

describe("Socket.IO client events with a name socket.io-client allows but the server reserves", () => {
  it('"error" with an ack gets 400, without one an error event, and the connection keeps working', async () => {
    const client = fixture.track(await connectSio(fixture.server.http));
    expect((await client.register()).type).toBe("registered");
    expect(await client.socket.timeout(5_000).emitWithAck("error", {})).toMatchObject({ type: "error", payload: { code: 400 } });
    client.socket.emit("error", {});
    expect(await client.next("error")).toMatchObject({ payload: { code: 400 } });
    expect((await client.request("ping")).type).toBe("pong");
  });
});

describe("max_message_size over Socket.IO", () => {
  /** A ping envelope whose Socket.IO packet is about `bytes` long, of `char` repeated. */
  const pingOfSize = (bytes: number, char = "x"): Record<string, unknown> => ({ payload: { pad: char.repeat(Math.floor(bytes / Buffer.byteLength(char))) } });

  const OVERSIZE: [string, Record<string, unknown>][] = [
    ["just over the limit", pingOfSize(MAX_MESSAGE_SIZE + 10)],
    ["just under twice the limit", pingOfSize(2 * MAX_MESSAGE_SIZE - 40)],
    ["over the limit in UTF-8 bytes only", pingOfSize(MAX_MESSAGE_SIZE + 100, "é")],
  ];

  it.each(OVERSIZE)("a message %s gets error 400 with close_code 1009, then the connection closes", async (_label, body) => {
    const client = fixture.track(await connectSio(fixture.server.http));
    expect((await client.register()).type).toBe("registered");
    client.socket.emit("ping", body);
    expect(await client.next("error")).toMatchObject({ payload: { code: 400, close_code: 1009 } });
    expect((await client.closed).code).toBe("io server disconnect");
  });

  it("a binary attachment over the limit gets the notice (1009), then the connection closes", async () => {
    const client = await rawClient();
    client.send(`51-1["ping",${placeholder(0)}]`);
    client.send(Buffer.alloc(MAX_MESSAGE_SIZE + 1));
    const notice = errorEvent(await client.next(isError));
    expect(notice).toMatchObject({ type: "error", payload: { code: 400, close_code: 1009 } });
    expect(await client.closed).toBeGreaterThan(0);
  });

  it("a message over twice the limit is cut by Engine.IO unread: no notice, the connection closes", async () => {
    const client = fixture.track(await connectSio(fixture.server.http));
    expect((await client.register()).type).toBe("registered");
    client.socket.emit("ping", pingOfSize(2 * MAX_MESSAGE_SIZE + 100));
    expect((await client.closed).code).toBe("transport close");
    expect(client.received.some((message) => message.type === "error")).toBe(false);
  });

  it("a message under the limit is handled", async () => {
    const client = fixture.track(await connectSio(fixture.server.http));
    expect((await client.register()).type).toBe("registered");
    // `42["ping",{"payload":{"pad":"…"}}]` is 31 bytes around the pad, with the Engine.IO prefix.
    expect((await client.request("ping", pingOfSize(MAX_MESSAGE_SIZE - 40))).type).toBe("pong");
  });
});
