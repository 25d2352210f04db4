import { isPlainObject, show, showObject, textDepth, tryParse, write, writeObject, type Entry, type Json, type RunContext } from "./fuzz-json.ts";

/**
 * The protocol as the fuzz suite checks it: what each generated frame must be answered with,
 * worked out from the exact bytes that go on the wire (so that the expectation and the frame can
 * never disagree), and how a frame is written for each transport.
 */

/** Config the fuzz cluster runs with; the depth limit is the server's default `max_json_depth`. */
export const MAX_MESSAGE_SIZE = 65_536;
export const MAX_JSON_DEPTH = 32;
/** Error codes a request may be refused with; never 500, and never a close. 401: a register's `signature` with no nonce to answer. */
export const REFUSALS: readonly number[] = [400, 401, 403, 404, 409, 429];

/** Request types with a direct reply, and the reply types each may get. */
const REPLIES = new Map<string, readonly string[]>([
  ["challenge", ["challenge"]],
  ["register", ["registered"]],
  ["join", ["peer_list"]],
  ["discover", ["peer_list"]],
  ["join_room", ["peer_list"]],
  ["match", ["match", "matched"]],
  ["match_cancel", ["match"]],
  ["create_room", ["room_created"]],
  ["room_info", ["room_info"]],
  ["ping", ["pong"]],
]);
/** Request types without a direct reply: silent on /ws, acknowledged with `ok` on Socket.IO. */
const SILENT = new Set(["leave", "signal", "relay", "broadcast", "kick", "metadata"]);
export const REQUEST_TYPES: readonly string[] = [...REPLIES.keys(), ...SILENT];
/** Types the server sends only as the direct reply to a request (`matched` is also delivered to group members). */
export const DIRECT_TYPES = new Set(["challenge", "registered", "peer_list", "room_created", "room_info", "match", "matched", "pong", "error"]);
/** Types that reach a peer because of what other peers do. */
export const DELIVERY_TYPES = new Set(["peer_joined", "peer_left", "signal", "relay", "broadcast", "kick", "matched"]);

/** A frame as generated. `env` is a JSON object; the other kinds are what only a broken client sends. */
export type Frame =
  | { readonly f: "env"; readonly entries: readonly Entry[] }
  | { readonly f: "text"; readonly text: string }
  | { readonly f: "binary"; readonly bytes: Uint8Array }
  | { readonly f: "sio"; readonly packet: SioPacket };

/** How a Socket.IO packet carries its acknowledgement id: ours, none, or a number no client could use. */
export type AckMode = "ack" | "none" | { readonly huge: string };

/** Socket.IO packets that have no /ws counterpart. */
export type SioPacket =
  /** `2<id>[event, ...args]`; no event at all writes `[...args]`. */
  | { readonly p: "event"; readonly event: Json | undefined; readonly args: readonly Json[]; readonly id: AckMode }
  /** `2<id><data>` with `data` as given (invalid JSON, a non-array...); an empty `data` leaves the packet without data. */
  | { readonly p: "data"; readonly data: string; readonly id: "ack" | "none" }
  /** `5<n>-<id>[event, ...args]` followed by n binary frames. */
  | { readonly p: "binaryEvent"; readonly event: Json; readonly args: readonly Json[]; readonly attachments: readonly Uint8Array[]; readonly id: "ack" | "none" }
  /**
   * A packet of a type no client may send with this data: types Socket.IO does not define (7-9),
   * a CONNECT_ERROR (4), a DISCONNECT with data (1).
   */
  | { readonly p: "otherType"; readonly digit: string; readonly data: string };

/** What a frame must be answered with. */
export type Expectation =
  /** Exactly one error 400. */
  | { readonly kind: "bad"; readonly why: string }
  /** Exactly one reply of `replies`, or one error with a code in REFUSALS. */
  | { readonly kind: "reply"; readonly type: string; readonly replies: readonly string[]; readonly request: Request }
  /** On /ws nothing or one refusal; on Socket.IO an `ok` ack or a refusal. */
  | { readonly kind: "silent"; readonly type: string; readonly request: Request };

/** The fields of a well-formed request that decide where it is delivered. */
export interface Request {
  readonly to: unknown;
  readonly payload: unknown;
}

function expectationFor(type: unknown, envelope: Record<string, unknown>, depth: number): Expectation {
  if (depth > MAX_JSON_DEPTH) return { kind: "bad", why: `nested ${depth} levels` };
  if (typeof type !== "string") return { kind: "bad", why: "type is not a string" };
  const request = { to: envelope["to"], payload: envelope["payload"] };
  const replies = REPLIES.get(type);
  if (replies !== undefined) return { kind: "reply", type, replies, request };
  if (SILENT.has(type)) return { kind: "silent", type, request };
  return { kind: "bad", why: "unknown type" };
}

/** What a frame must get on a connection that has not registered yet: anything but `register` and `challenge` is refused with 400 ("register first"). */
export function beforeRegister(expect: Expectation, registered: boolean): Expectation {
  if (registered || expect.kind === "bad" || expect.type === "register" || expect.type === "challenge") return expect;
  return { kind: "bad", why: "register first" };
}

/** A /ws frame: what goes on the wire and what must come back. */
export interface WsWire {
  readonly data: Buffer;
  readonly binary: boolean;
  readonly expect: Expectation;
}

export function wsWire(frame: Frame, context: RunContext): WsWire {
  if (frame.f === "binary") return { data: Buffer.from(frame.bytes), binary: true, expect: { kind: "bad", why: "binary frame" } };
  if (frame.f === "sio") throw new Error("a Socket.IO packet cannot be sent on /ws");
  const data = Buffer.from(frame.f === "env" ? writeObject(frame.entries, context) : frame.text);
  // What the server decodes: a JS string with lone surrogates went out as U+FFFD.
  return { data, binary: false, expect: classifyWsText(data.toString()) };
}

export function classifyWsText(text: string): Expectation {
  const parsed = tryParse(text);
  if (parsed === undefined) return { kind: "bad", why: "invalid JSON" };
  if (!isPlainObject(parsed.value)) return { kind: "bad", why: "not a JSON object" };
  return expectationFor(parsed.value["type"], parsed.value, textDepth(text));
}

/** A Socket.IO frame: the engine messages to send, the ack id the answer must carry (if any), and the answer. */
export interface SioWire {
  /** `4<packet>`, or undefined for a lone binary frame. */
  readonly text: string | undefined;
  readonly binaries: readonly Buffer[];
  /** The ack id the server can answer on; undefined when the frame has none it could use. */
  readonly ackId: string | undefined;
  readonly expect: Expectation;
}

/** Socket.IO would read these at the start of a packet's data as part of an ack id or namespace. */
const AMBIGUOUS_START = /^[\s0-9/]/;

export function sioWire(frame: Frame, context: RunContext, nextId: () => string): SioWire {
  switch (frame.f) {
    case "binary":
      return { text: undefined, binaries: [Buffer.from(frame.bytes)], ackId: undefined, expect: { kind: "bad", why: "binary frame" } };
    case "env": {
      let type: Json | undefined;
      const rest: Entry[] = [];
      for (const entry of frame.entries) {
        if (entry[0] === "type") type = entry[1];
        else rest.push(entry);
      }
      const id = nextId();
      const body = writeObject(rest, context);
      return eventWire(id, `[${type === undefined ? "" : `${write(type, context)},`}${body}]`, true);
    }
    case "text": {
      // Text that Socket.IO would parse as an id or a namespace goes as a JSON string: still no event.
      const data = frame.text === "" || AMBIGUOUS_START.test(frame.text) ? JSON.stringify(frame.text) : frame.text;
      return eventWire(nextId(), data, true);
    }
    case "sio":
      return sioPacketWire(frame.packet, context, nextId);
  }
}

function sioPacketWire(packet: SioPacket, context: RunContext, nextId: () => string): SioWire {
  switch (packet.p) {
    case "event": {
      const items = [...(packet.event === undefined ? [] : [packet.event]), ...packet.args].map((item) => write(item, context));
      const data = `[${items.join(",")}]`;
      if (typeof packet.id === "object") return { text: `42${packet.id.huge}${data}`, binaries: [], ackId: undefined, expect: { kind: "bad", why: "ack id out of range" } };
      return eventWire(packet.id === "ack" ? nextId() : "", data, packet.id === "ack");
    }
    case "data": {
      const data = packet.data !== "" && AMBIGUOUS_START.test(packet.data) ? JSON.stringify(packet.data) : packet.data;
      const classified = classifySioData(Buffer.from(data).toString());
      // A well-formed event is always sent with an ack id, so that its answer is known.
      const useAck = packet.id === "ack" || classified.kind !== "bad";
      return eventWire(useAck ? nextId() : "", data, useAck);
    }
    case "binaryEvent": {
      const id = packet.id === "ack" ? nextId() : "";
      const items = [packet.event, ...packet.args].map((item) => write(item, context));
      return {
        text: `45${packet.attachments.length}-${id}[${items.join(",")}]`,
        binaries: packet.attachments.map((bytes) => Buffer.from(bytes)),
        ackId: id === "" ? undefined : id,
        expect: { kind: "bad", why: "binary attachments" },
      };
    }
    case "otherType": {
      // An empty DISCONNECT is a client leaving, which is not malformed: it always carries data.
      const data = packet.data === "" || AMBIGUOUS_START.test(packet.data) ? JSON.stringify(packet.data) : packet.data;
      return { text: `4${packet.digit}${data}`, binaries: [], ackId: undefined, expect: { kind: "bad", why: `packet type ${packet.digit}` } };
    }
  }
}

function eventWire(id: string, data: string, withAck: boolean): SioWire {
  // What the server decodes: a JS string with lone surrogates goes out as U+FFFD.
  const sent = Buffer.from(data).toString();
  return { text: `42${id}${sent}`, binaries: [], ackId: withAck ? id : undefined, expect: classifySioData(sent) };
}

/** The answer Socket.IO's event `data` (the text after the ack id) must get. */
export function classifySioData(data: string): Expectation {
  if (data === "") return { kind: "bad", why: "no event" };
  const parsed = tryParse(data);
  if (parsed === undefined) return { kind: "bad", why: "invalid JSON" };
  const value = parsed.value;
  if (!Array.isArray(value) || value.length === 0) return { kind: "bad", why: "not an event array" };
  const [event, ...args] = value as unknown[];
  if (typeof event !== "string") return { kind: "bad", why: "event name is not a string" };
  if (args.length > 1) return { kind: "bad", why: `${args.length} arguments` };
  const envelope = args.length === 0 ? {} : args[0];
  if (!isPlainObject(envelope)) return { kind: "bad", why: "argument is not an object" };
  // The event array is not part of the message: its argument (the envelope) is depth 1.
  return expectationFor(event, envelope, textDepth(data) - 1);
}

/**
 * Where a request that was not refused must be delivered, as far as the lane's witness can see:
 * the delivered type if the witness is its target (signal, relay) or a member that was not
 * excluded (broadcast in the shared namespace); undefined otherwise.
 */
export function deliveryToWitness(expect: Expectation, context: RunContext): string | undefined {
  if (expect.kind !== "silent") return undefined;
  const { to, payload } = expect.request;
  if (expect.type === "signal" || expect.type === "relay") {
    if (typeof to !== "string") return undefined;
    const target = /^[0-9a-fA-F]{64}$/.test(to) ? to.toLowerCase() : to;
    return target === context.witnessFp || target === context.witnessAlias ? expect.type : undefined;
  }
  if (expect.type === "broadcast" && isPlainObject(payload) && payload["namespace"] === context.shared) {
    const exclude = payload["exclude"];
    const excluded = Array.isArray(exclude) && exclude.some((item) => typeof item === "string" && item.toLowerCase() === context.witnessFp);
    return excluded ? undefined : "broadcast";
  }
  return undefined;
}

/** A readable form of a frame for failure reports. */
export function showFrame(frame: Frame): string {
  switch (frame.f) {
    case "env":
      return showObject(frame.entries);
    case "text":
      return `text ${frame.text.length > 120 ? `${JSON.stringify(frame.text.slice(0, 100))}…(${frame.text.length} chars)` : JSON.stringify(frame.text)}`;
    case "binary":
      return `binary <${Buffer.from(frame.bytes.subarray(0, 32)).toString("hex")}${frame.bytes.length > 32 ? "…" : ""}> (${frame.bytes.length} bytes)`;
    case "sio":
      return showPacket(frame.packet);
  }
}

function showPacket(packet: SioPacket): string {
  const id = (mode: AckMode): string => (typeof mode === "object" ? mode.huge : mode === "ack" ? "<id>" : "");
  switch (packet.p) {
    case "event":
      return `42${id(packet.id)}[${[...(packet.event === undefined ? [] : [packet.event]), ...packet.args].map(show).join(",")}]`;
    case "data":
      return `42${id(packet.id)}${packet.data.length > 120 ? `${packet.data.slice(0, 100)}…(${packet.data.length} chars)` : packet.data}`;
    case "binaryEvent":
      return `45${packet.attachments.length}-${id(packet.id)}[${[packet.event, ...packet.args].map(show).join(",")}] + ${packet.attachments.length} binary frame(s)`;
    case "otherType":
      return `4${packet.digit}${packet.data}`;
  }
}

/** A message as received: `{type, ...body}` on /ws, and the same rebuilt from a Socket.IO ack or event. */
export type Answer = Record<string, unknown> & { type?: unknown; payload?: unknown };

const HEX64 = /^[0-9a-f]{64}$/;

/**
 * Why `answer` is not a refusal the protocol allows (a code in `codes`, without a close), or
 * undefined if it is. A refused request names itself in `ref` (its type): pass `ref` to check it.
 */
export function refusalProblem(answer: Answer, codes: readonly number[] = REFUSALS, ref?: string): string | undefined {
  if (answer.type !== "error") return `expected an error, got ${brief(answer)}`;
  const payload = answer.payload;
  if (!isPlainObject(payload)) return `error without a payload: ${brief(answer)}`;
  if (!codes.includes(payload["code"] as number)) return `error code ${String(payload["code"])}, expected ${codes.join(" or ")}: ${brief(answer)}`;
  if (payload["close_code"] !== undefined) return `the server is closing the connection: ${brief(answer)}`;
  if (ref !== undefined && payload["ref"] !== ref) return `an error with ref ${JSON.stringify(payload["ref"])} where the refusal of this ${ref} was due (an answer to another frame?): ${brief(answer)}`;
  return undefined;
}

/** Why a direct reply does not fit the request, or undefined if it does. */
function replyProblem(type: string, replies: readonly string[], answer: Answer): string | undefined {
  if (answer.type === "error") return refusalProblem(answer, REFUSALS, type);
  if (typeof answer.type !== "string" || !replies.includes(answer.type)) return `expected ${replies.join(" or ")} (or a refusal), got ${brief(answer)}`;
  const payload = isPlainObject(answer.payload) ? answer.payload : {};
  const bad = (what: string): string => `${answer.type as string} reply ${what}: ${brief(answer)}`;
  switch (answer.type) {
    case "challenge":
      return typeof payload["nonce"] === "string" && /^[A-Za-z0-9_-]{43}$/.test(payload["nonce"]) ? undefined : bad("without a nonce");
    case "registered":
      return typeof payload["fingerprint"] === "string" && HEX64.test(payload["fingerprint"]) && typeof payload["alias"] === "string" && typeof payload["verified"] === "boolean"
        ? undefined
        : bad("without fingerprint, alias and verified");
    case "peer_list":
      return Array.isArray(payload["peers"]) && typeof payload["total"] === "number" ? undefined : bad("without peers and total");
    case "match":
      return payload["status"] === (type === "match_cancel" ? "cancelled" : "waiting") ? undefined : bad("with the wrong status");
    case "matched":
      return typeof payload["session_id"] === "string" && Array.isArray(payload["peers"]) ? undefined : bad("without session_id and peers");
    case "room_created":
    case "room_info":
      return typeof payload["room_id"] === "string" ? undefined : bad("without room_id");
    default:
      return undefined;
  }
}

/**
 * Why `answer` is not what `expect` allows, or undefined if it is. `answer` is undefined when
 * nothing came (only allowed for a silent request on /ws). On Socket.IO a silent request that
 * succeeds is acknowledged with `{"type":"ok","payload":{"ref":<type>}}`.
 */
export function answerProblem(expect: Expectation, answer: Answer | undefined, transport: "ws" | "sio"): string | undefined {
  switch (expect.kind) {
    case "bad":
      return answer === undefined ? `no answer; expected error 400 (${expect.why})` : refusalProblem(answer, [400]);
    case "reply":
      return answer === undefined ? `no answer; expected ${expect.replies.join(" or ")} or a refusal` : replyProblem(expect.type, expect.replies, answer);
    case "silent":
      if (answer === undefined) return transport === "ws" ? undefined : "no acknowledgement";
      if (answer.type === "ok" && transport === "sio") {
        return isPlainObject(answer.payload) && answer.payload["ref"] === expect.type ? undefined : `ok without ref ${expect.type}: ${brief(answer)}`;
      }
      return refusalProblem(answer, REFUSALS, expect.type);
  }
}

/** The answer the barrier `ping` must get: pong once registered, else error 400 (register first). */
export function barrierProblem(registered: boolean, answer: Answer): string | undefined {
  if (registered) return answer.type === "pong" ? undefined : `the barrier ping got ${brief(answer)}, expected pong`;
  const problem = refusalProblem(answer, [400]);
  return problem === undefined ? undefined : `the barrier ping of an unregistered connection: ${problem}`;
}

/** A message shortened for reports. */
export function brief(message: unknown): string {
  const text = JSON.stringify(message) ?? String(message);
  return text.length > 300 ? `${text.slice(0, 300)}…(${text.length} chars)` : text;
}
