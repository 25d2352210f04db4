import fc from "fast-check";
import { isPlainObject } from "./fuzz-json.ts";
import { brief, MAX_MESSAGE_SIZE, type Answer } from "./fuzz-protocol.ts";
import type { Lane } from "./fuzz-runs.ts";
import { RawSocket, RawSocketIo, type Closed } from "./fuzz-wire.ts";

/**
 * The malformed frames that may (and must) cost the connection: text that is not UTF-8 (the
 * WebSocket standard requires close 1007) and messages over max_message_size (a notice with
 * close_code 1009, then the close, 1009 on /ws; a WebSocket frame over twice the size may be cut
 * without the notice). A message is the /ws frame, or for Socket.IO the Engine.IO message: the
 * WebSocket frame without its one-character engine packet type. Each run opens a fresh connection
 * for its one such frame.
 */

/** Byte sequences that are not UTF-8: stray bytes, overlong forms, surrogates, past U+10FFFF, truncated sequences. */
const INVALID_UTF8: readonly (readonly number[])[] = [
  [0xff],
  [0xfe],
  [0xff, 0xfe],
  [0x80],
  [0xc0, 0xaf],
  [0xc1, 0xbf],
  [0xe0, 0x80, 0xaf],
  [0xed, 0xa0, 0x80],
  [0xed, 0xbf, 0xbf],
  [0xf4, 0x90, 0x80, 0x80],
  [0xf8, 0x88, 0x80, 0x80, 0x80],
  [0xc3],
  [0xe2, 0x82],
  [0xf0, 0x9f, 0x92],
];

export interface Utf8Case {
  readonly registered: boolean;
  readonly prefix: string;
  readonly bad: readonly number[];
  readonly suffix: string;
}

export const utf8Case: fc.Arbitrary<Utf8Case> = fc.record({
  registered: fc.boolean(),
  prefix: fc.constantFrom('{"type":"ping","x":"', '{"type":"', "", '["ping",{"payload":"', "x".repeat(200)),
  bad: fc.constantFrom(...INVALID_UTF8),
  suffix: fc.constantFrom('"}', "", '"}]', "tail"),
});

export const showUtf8Case = (value: Utf8Case): string =>
  `registered: ${value.registered}; text frame ${JSON.stringify(value.prefix.slice(0, 40))} + <${Buffer.from(value.bad).toString("hex")}> + ${JSON.stringify(value.suffix)}`;

export interface OversizeCase {
  readonly registered: boolean;
  /** Send a message of exactly max_message_size first: it must be answered, not refused for its size. */
  readonly atLimitFirst: boolean;
  /** Size of the message (see above). */
  readonly bytes: number;
  readonly content: "json" | "garbage" | "binary";
}

export const oversizeCase: fc.Arbitrary<OversizeCase> = fc.record({
  registered: fc.boolean(),
  atLimitFirst: fc.boolean(),
  bytes: fc.oneof(
    { weight: 4, arbitrary: fc.integer({ min: MAX_MESSAGE_SIZE + 1, max: MAX_MESSAGE_SIZE + 2_048 }) },
    { weight: 2, arbitrary: fc.integer({ min: MAX_MESSAGE_SIZE + 2_049, max: 2 * MAX_MESSAGE_SIZE }) },
    { weight: 2, arbitrary: fc.integer({ min: 2 * MAX_MESSAGE_SIZE + 1, max: 2 * MAX_MESSAGE_SIZE + 4_096 }) },
  ),
  content: fc.constantFrom<"json" | "garbage" | "binary">("json", "json", "garbage", "binary"),
});

export const showOversizeCase = (value: OversizeCase): string =>
  `registered: ${value.registered}; at-limit message first: ${value.atLimitFirst}; then a ${value.content} message of ${value.bytes} bytes (max_message_size ${MAX_MESSAGE_SIZE})`;

/** Where close cases are sent; counts the frames. */
export type CloseTarget = Pick<Lane, "server" | "name" | "framesSent">;

class CloseFailure extends Error {
  override name = "CloseFailure";
}

/**
 * The frame of a message of exactly `bytes` holding a ping: `{"type":"ping","pad":"xxx…"}` on /ws;
 * for Socket.IO the engine packet type `4` and the message `2<id>["ping",{"pad":"xxx…"}]`.
 */
function paddedPing(bytes: number, socketIoId: string | undefined): string {
  const head = socketIoId === undefined ? '{"type":"ping","pad":"' : `2${socketIoId}["ping",{"pad":"`;
  const tail = socketIoId === undefined ? '"}' : '"}]';
  return (socketIoId === undefined ? "" : "4") + head + "x".repeat(bytes - head.length - tail.length) + tail;
}

/** A transport-neutral view of one fresh connection: what it received, and its close. */
interface Probe {
  readonly messages: Answer[];
  readonly closedWithin: (ms: number) => Promise<Closed | undefined>;
  /** Resolves with the next message (Socket.IO: the next ack or error event). */
  next(timeoutMs: number): Promise<Answer | undefined>;
  sendText(text: string | Buffer): void;
  sendBinary(bytes: Buffer): void;
  close(): void;
}

async function probe(lane: CloseTarget, transport: "ws" | "sio", registered: boolean, key: string): Promise<Probe> {
  const messages: Answer[] = [];
  const waiters: ((message: Answer) => void)[] = [];
  const push = (message: Answer): void => {
    const waiter = waiters.shift();
    if (waiter !== undefined) waiter(message);
    else messages.push(message);
  };
  let socket: RawSocket;
  if (transport === "ws") {
    socket = await RawSocket.open(lane.server.ws);
    socket.onText((text) => {
      let message: unknown;
      try {
        message = JSON.parse(text);
      } catch {
        message = { type: "not-json", text };
      }
      push(isPlainObject(message) ? message : { type: "not-an-object", value: message });
    });
  } else {
    const client = await RawSocketIo.open(lane.server.http);
    socket = client.raw;
    client.onPacket((inbound) => {
      if (inbound.kind === "ack") push(isPlainObject(inbound.args) ? (inbound.args as Answer) : { type: "odd-ack", value: inbound.args });
      else if (inbound.kind === "event" && inbound.name === "error") push({ ...(isPlainObject(inbound.args[0]) ? inbound.args[0] : {}), type: "error" });
      // Socket.IO's own DISCONNECT (`41`) and Engine.IO's close (`1`) are how a disconnect looks there.
      else if (inbound.kind === "other" && inbound.text !== "41" && inbound.text !== "1") push({ type: "odd-packet", text: inbound.text });
    });
  }
  const result: Probe = {
    messages,
    closedWithin: (ms) => socket.closedWithin(ms),
    next: (timeoutMs) =>
      messages.length > 0
        ? Promise.resolve(messages.shift())
        : new Promise((resolve) => {
            const timer = setTimeout(() => {
              waiters.splice(waiters.indexOf(done), 1);
              resolve(undefined);
            }, timeoutMs);
            const done = (message: Answer): void => {
              clearTimeout(timer);
              resolve(message);
            };
            waiters.push(done);
          }),
    sendText: (text) => socket.send(text, false),
    sendBinary: (bytes) => socket.send(bytes, true),
    close: () => socket.close(),
  };
  if (registered) {
    result.sendText(transport === "ws" ? JSON.stringify({ type: "register", payload: { public_key: key } }) : `421${JSON.stringify(["register", { payload: { public_key: key } }])}`);
    const reply = await result.next(5_000);
    if (reply?.type !== "registered") throw new CloseFailure(`register before the frame failed: ${brief(reply)}`);
  }
  return result;
}

let caseCounter = 0;
const keyFor = (lane: CloseTarget): string => `${lane.name}-close-${caseCounter++}`;

export async function runUtf8Case(lane: CloseTarget, transport: "ws" | "sio", value: Utf8Case): Promise<void> {
  const connection = await probe(lane, transport, value.registered, keyFor(lane));
  try {
    const engine = transport === "sio" ? "4" : "";
    connection.sendText(Buffer.concat([Buffer.from(engine + value.prefix), Buffer.from(value.bad), Buffer.from(value.suffix)]));
    lane.framesSent++;
    const closed = await connection.closedWithin(5_000);
    if (closed === undefined) throw new CloseFailure(`still open 5s after a text frame that is not UTF-8; received ${brief(connection.messages)}`);
    if (closed.code !== 1007) throw new CloseFailure(`closed with ${closed.code} ${closed.reason}, expected 1007`);
    for (const message of connection.messages) {
      const payload = isPlainObject(message.payload) ? message.payload : {};
      if (message.type !== "error" || payload["close_code"] !== 1007) throw new CloseFailure(`before the close came ${brief(message)}; only a notice with close_code 1007 may`);
    }
  } finally {
    connection.close();
  }
}

export async function runOversizeCase(lane: CloseTarget, transport: "ws" | "sio", value: OversizeCase): Promise<void> {
  const connection = await probe(lane, transport, value.registered, keyFor(lane));
  try {
    if (value.atLimitFirst) {
      connection.sendText(paddedPing(MAX_MESSAGE_SIZE, transport === "sio" ? "7" : undefined));
      const reply = await connection.next(5_000);
      const expected = value.registered ? "pong" : "error 400 (register first)";
      const fits = value.registered ? reply?.type === "pong" : reply?.type === "error" && isPlainObject(reply.payload) && reply.payload["code"] === 400 && reply.payload["close_code"] === undefined;
      if (!fits) throw new CloseFailure(`a ping of exactly max_message_size (${MAX_MESSAGE_SIZE} bytes) got ${brief(reply)}, expected ${expected}`);
    }
    // A Socket.IO text message travels behind its engine packet type: the frame is one byte longer.
    const engine = transport === "sio" ? "4" : "";
    if (value.content === "binary") connection.sendBinary(Buffer.alloc(value.bytes, 0x61));
    else if (value.content === "garbage") connection.sendText(engine + "x".repeat(value.bytes));
    else connection.sendText(paddedPing(value.bytes, transport === "sio" ? "8" : undefined));
    const frameBytes = value.content === "binary" ? value.bytes : value.bytes + engine.length;
    lane.framesSent++;
    const closed = await connection.closedWithin(5_000);
    const notice = connection.messages[0];
    const noticePayload = notice !== undefined && isPlainObject(notice.payload) ? notice.payload : undefined;
    const isNotice = notice?.type === "error" && noticePayload?.["code"] === 400 && noticePayload["close_code"] === 1009;
    if (closed === undefined) throw new CloseFailure(`still open 5s after an oversize frame; received ${brief(connection.messages)}`);
    if (transport === "ws" && closed.code !== 1009) throw new CloseFailure(`closed with ${closed.code} ${closed.reason}, expected 1009; received ${brief(connection.messages)}`);
    if (connection.messages.length > 1 || (notice !== undefined && !isNotice)) throw new CloseFailure(`before the close came ${brief(connection.messages)}; only the notice may`);
    if (frameBytes <= 2 * MAX_MESSAGE_SIZE && !isNotice) {
      throw new CloseFailure(`closed (${closed.code} ${closed.reason}) without the notice {"type":"error","payload":{"code":400,"close_code":1009}} that a ${frameBytes}-byte frame (up to twice max_message_size) must get`);
    }
  } finally {
    connection.close();
  }
}
