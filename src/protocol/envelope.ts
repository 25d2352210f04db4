/**
 * The body of an envelope: everything but `type`. Socket.IO carries it as the event's single
 * argument; the raw endpoint sends `{"type": ..., ...body}`.
 */
export interface Body {
  from?: string;
  to?: string;
  namespace?: string;
  payload?: unknown;
  ts?: number;
}

/**
 * A received envelope's fields, as a transport hands them to the decoder (protocol/decoder.ts):
 * the parsed `/ws` frame, the Socket.IO event's argument, or what a dialect builds. Any object
 * with these fields will do; others (`from`, `ts`, unknown ones) are never read, so a client
 * cannot set them. `namespace` is accepted and unused: requests name their scope in `payload`.
 */
export interface ReceivedEnvelope {
  readonly to?: unknown;
  readonly namespace?: unknown;
  readonly payload?: unknown;
}

const EMPTY_OBJECT = "{}";

/**
 * Encodes a message for the raw endpoint. The type is spliced in front of the serialized body
 * so that the body is stringified once and never copied into a new object.
 */
export function encodeRaw(type: string, body: Body): string {
  return spliceType(type, JSON.stringify(body));
}

/** Prepends `"type"` to an already serialized JSON object. */
export function spliceType(type: string, bodyJson: string): string {
  return bodyJson === EMPTY_OBJECT ? `{"type":"${type}"}` : `{"type":"${type}",${bodyJson.slice(1)}`;
}

/**
 * Converts a Socket.IO-encoded event packet (`2["type",{...}]`, default namespace, no ack id)
 * into the raw envelope, without parsing it. Returns undefined for any other packet shape.
 * This is how adapter broadcasts, which Socket.IO encodes once for all its sockets, reach raw
 * peers without a second serialization.
 */
export function socketIoPacketToRaw(packet: string): string | undefined {
  if (!packet.startsWith('2["')) return undefined;
  const nameEnd = packet.indexOf('",', 3);
  if (nameEnd < 0 || packet.charCodeAt(packet.length - 1) !== 93 /* ] */) return undefined;
  const type = packet.slice(3, nameEnd);
  const body = packet.slice(nameEnd + 2, -1);
  if (body.charCodeAt(0) !== 123 /* { */) return undefined;
  return spliceType(type, body);
}
