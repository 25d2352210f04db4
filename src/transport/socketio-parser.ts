import { EventEmitter } from "node:events";
import type { Packet, PacketType as PacketTypes } from "socket.io-parser";
import { socketIoParserLibrary } from "../internals/socketio-parser-library.ts";

const { Decoder: ParserDecoder, Encoder, PacketType } = socketIoParserLibrary;

/**
 * The Socket.IO packet parser the server runs with (socket.io's `parser` option): socket.io-parser's
 * own Encoder, and a Decoder that never lets a client's packet close its connection where socket.io
 * leaves the choice to the server.
 *
 * socket.io closes a client's whole connection when its decoder throws (invalid JSON, a payload
 * that is not an array, an unknown packet type, bad attachment counts, binary data out of turn, the
 * event names socket.io-parser reserves), and echoes any ack id it decoded, even one that does not
 * survive JSON (`1e+30`). This Decoder hands socket.io every such packet as an ordinary EVENT
 * instead, named {@link BAD_PACKET_EVENT}, whose one argument is the reason and whose ack id is the
 * client's when that id is valid: the transport answers it with error 400 (as an ack when there is
 * one) and the connection stays.
 *
 * What socket.io still decides itself, because the refused packet keeps the namespace the client
 * addressed: a packet (good or bad) that arrives before the client's CONNECT, or for a namespace it
 * has not joined, closes the connection; so does a second CONNECT. CONNECT and DISCONNECT packets,
 * ACKs and valid events pass through unchanged.
 */

/**
 * The event name a refused packet carries: `[BAD_PACKET_EVENT, reason]`, in the namespace the
 * client addressed (`/` when that cannot be read). A client can never send it: an event of this
 * name from a client is refused like any other reserved name.
 */
export const BAD_PACKET_EVENT = "peer-server:bad-packet";

/** The reason given for any packet with binary attachments: the protocol is JSON (raw /ws peers could never receive it). */
export const BINARY_REFUSED = "binary data is not supported; send JSON";

/**
 * Event names that must not reach socket.io's Socket, an EventEmitter: socket.io-parser's reserved
 * names (its decoder throws on them), `error` (socket.io's own error signal on a Socket: it only
 * avoids a crash with a no-op listener, and any `error` listener would take a client's event for a
 * server error) and our own {@link BAD_PACKET_EVENT}.
 */
const RESERVED_EVENTS: ReadonlySet<string> = new Set([
  "connect",
  "connect_error",
  "disconnect",
  "disconnecting",
  "newListener",
  "removeListener",
  "error",
  BAD_PACKET_EVENT,
]);

/** Attachments one binary packet may announce: socket.io-parser's own default cap. */
const MAX_ATTACHMENTS = 10;

/**
 * Largest ack id echoed back. socket.io clients count ids up from 0; socket.io-parser accepts any
 * run of digits, and one beyond a safe integer comes back as another number (or `1e+30`, which no
 * client can parse as a packet). Ids up to 2^31-1 round-trip exactly in every implementation.
 */
const MAX_ACK_ID = 2 ** 31 - 1;

const DIGIT_ZERO = 48;

/** `5<n>-` / `6<n>-`: a binary packet's attachment count. */
const ATTACHMENTS = /^[56]([0-9]+)-/;

const validAckId = (id: unknown): id is number => Number.isSafeInteger(id) && (id as number) >= 0 && (id as number) <= MAX_ACK_ID;

const refused = (nsp: string, reason: string, id: number | undefined): Packet =>
  id === undefined ? { type: PacketType.EVENT, nsp, data: [BAD_PACKET_EVENT, reason] } : { type: PacketType.EVENT, nsp, data: [BAD_PACKET_EVENT, reason], id };

/**
 * The Decoder behind {@link socketIoParser}. It holds a socket.io-parser Decoder rather than
 * extending one: that decoder announces packets through its base class (`super.emitReserved`),
 * which a subclass cannot intercept to check a packet before socket.io sees it; and its state is
 * private, so the one way to leave it sane after it throws is its public `destroy()`, which this
 * calls.
 *
 * It never reconstructs binary packets: a binary packet's header is decoded as the plain packet it
 * would become (for its namespace and ack id), then its attachments are counted off and dropped as
 * they arrive, with no buffer kept, and the refusal ({@link BINARY_REFUSED}) is handed on with the
 * last one. A text packet that arrives before the last attachment hands the refusal on first, then
 * is decoded as usual.
 *
 * Relies on socket.io-parser's Decoder emitting `decoded` from within `add()` for every text
 * packet that is not binary: only binary packets, which it is never given, make it wait for more.
 */
export class GuardedDecoder extends EventEmitter<{ decoded: [Packet] }> {
  readonly #inner = new ParserDecoder();
  #last: Packet | undefined;
  /** The refusal of a binary packet whose attachments are still arriving. */
  #pending: { remaining: number; packet: Packet } | undefined;

  constructor() {
    super();
    this.#inner.on("decoded", (packet: Packet) => {
      this.#last = packet;
    });
  }

  /** Decodes one engine.io message (a string, or binary data); emits `decoded` for each whole packet. */
  add(data: unknown): void {
    if (typeof data !== "string" && (data instanceof ArrayBuffer || ArrayBuffer.isView(data))) {
      this.#addBinary();
      return;
    }
    const pending = this.#pending;
    if (pending !== undefined) {
      this.#pending = undefined;
      this.emit("decoded", pending.packet);
    }
    // Engine.IO hands an empty message (`4`) on as undefined.
    const packet = typeof data === "string" && data.length > 0 ? this.#decodeText(data) : refused("/", "empty Socket.IO packet", undefined);
    if (packet !== undefined) this.emit("decoded", packet);
  }

  /** Drops any binary packet in progress (socket.io calls this when the connection closes). */
  destroy(): void {
    this.#pending = undefined;
    this.#inner.destroy();
  }

  #addBinary(): void {
    const pending = this.#pending;
    if (pending === undefined) {
      this.emit("decoded", refused("/", "binary data without a binary packet before it", undefined));
      return;
    }
    if (--pending.remaining > 0) return;
    this.#pending = undefined;
    this.emit("decoded", pending.packet);
  }

  #decodeText(text: string): Packet | undefined {
    const type = text.charCodeAt(0) - DIGIT_ZERO;
    if (type === PacketType.BINARY_EVENT || type === PacketType.BINARY_ACK) {
      this.#startBinary(text, type);
      return undefined;
    }
    if (!(type >= PacketType.CONNECT && type <= PacketType.CONNECT_ERROR)) return refused("/", "unknown Socket.IO packet type", undefined);
    const packet = this.#parse(text);
    if (packet instanceof Error) {
      const header = headerOf(text);
      const name = type === PacketType.EVENT ? reservedNameIn(text.slice(header.dataStart)) : undefined;
      return refused(header.nsp, name === undefined ? `invalid Socket.IO packet: ${packet.message}` : `"${name}" is a reserved event name`, header.id);
    }
    return screen(packet);
  }

  #startBinary(text: string, type: PacketTypes.BINARY_EVENT | PacketTypes.BINARY_ACK): void {
    const count = ATTACHMENTS.exec(text);
    const attachments = count === null ? 0 : Number(count[1]);
    if (count === null || attachments < 1 || attachments > MAX_ATTACHMENTS) {
      // The count cannot be trusted, so no attachments are expected: each that arrives is refused on its own.
      const header = headerOf(text);
      const reason = attachments > MAX_ATTACHMENTS ? `more than ${MAX_ATTACHMENTS} attachments` : "illegal attachment count";
      this.emit("decoded", refused(header.nsp, reason, header.id));
      return;
    }
    // The header as the plain EVENT (2) or ACK (3) it would become; its placeholders stay unresolved.
    const packet = this.#parse(String(type - 3) + text.slice(count[0].length));
    const header = packet instanceof Error ? headerOf(text) : { nsp: packet.nsp, id: type === PacketType.BINARY_EVENT && validAckId(packet.id) ? packet.id : undefined };
    this.#pending = { remaining: attachments, packet: refused(header.nsp, BINARY_REFUSED, header.id) };
  }

  /** A text packet of type 0-4 through socket.io-parser; its error when it throws. */
  #parse(text: string): Packet | Error {
    this.#last = undefined;
    try {
      this.#inner.add(text);
    } catch (error) {
      this.#inner.destroy();
      return error instanceof Error ? error : new Error(String(error));
    }
    return this.#takeLast() ?? new Error("no packet decoded");
  }

  #takeLast(): Packet | undefined {
    const packet = this.#last;
    this.#last = undefined;
    return packet;
  }
}

/** What socket.io-parser accepts but must not reach socket.io; everything else passes unchanged. */
function screen(packet: Packet): Packet {
  if (packet.type === PacketType.CONNECT_ERROR) return refused(packet.nsp, "CONNECT_ERROR packets are sent by servers only", undefined);
  if (packet.type !== PacketType.EVENT) return packet;
  const id = packet.id;
  if (id !== undefined && !validAckId(id)) return refused(packet.nsp, "ack id out of range", undefined);
  const data: unknown = packet.data;
  const name: unknown = Array.isArray(data) ? data[0] : undefined;
  // socket.io also accepts numeric event names; the protocol's events are message types, so strings.
  if (typeof name !== "string") return refused(packet.nsp, "an event needs a string name", id);
  if (RESERVED_EVENTS.has(name)) return refused(packet.nsp, `"${name}" is a reserved event name`, id);
  return packet;
}

/**
 * The namespace, ack id (of an event, when valid) and data offset of a packet socket.io-parser
 * refused, read the way it reads them: `<type>[<attachments>-][/<nsp>,][<id>]<json>`.
 */
function headerOf(text: string): { nsp: string; id: number | undefined; dataStart: number } {
  const type = text.charCodeAt(0) - DIGIT_ZERO;
  let index = 1;
  if (type === PacketType.BINARY_EVENT || type === PacketType.BINARY_ACK) {
    const count = ATTACHMENTS.exec(text);
    // Without its attachment count the rest cannot be told apart: no ack id is guessed.
    if (count === null) return { nsp: "/", id: undefined, dataStart: text.length };
    index = count[0].length;
  }
  let nsp = "/";
  if (text.charAt(index) === "/") {
    const comma = text.indexOf(",", index);
    nsp = text.slice(index, comma < 0 ? text.length : comma);
    index = comma < 0 ? text.length : comma + 1;
  }
  const idStart = index;
  while (index < text.length && text.charCodeAt(index) >= DIGIT_ZERO && text.charCodeAt(index) <= DIGIT_ZERO + 9) index++;
  const event = type === PacketType.EVENT || type === PacketType.BINARY_EVENT;
  const id = event && index > idStart ? Number(text.slice(idStart, index)) : undefined;
  return { nsp, id: validAckId(id) ? id : undefined, dataStart: index };
}

/** The reserved event name a refused event's data starts with, if that is why it was refused. */
function reservedNameIn(json: string): string | undefined {
  try {
    const data: unknown = JSON.parse(json);
    const name: unknown = Array.isArray(data) ? data[0] : undefined;
    return typeof name === "string" && RESERVED_EVENTS.has(name) ? name : undefined;
  } catch {
    return undefined;
  }
}

/** socket.io's `parser` server option: socket.io-parser's Encoder, and {@link GuardedDecoder}. */
export const socketIoParser = { Encoder, Decoder: GuardedDecoder } as const;
