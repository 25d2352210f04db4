import type { Body } from "../protocol/envelope.ts";
import { memberText } from "../protocol/json-span.ts";
import { WsConnection } from "../transport/ws-connection.ts";

/**
 * What a dialect's signal carries through the core: the dialect's own message type and the one
 * value it forwards (a PeerPigeon offer's `data`, a p2p `sdp`, a random-chat `candidate`).
 */
export type ForwardedSignal = { t: string; v: unknown };

/**
 * The payload of a dialect's signal, as an object (for the paths that serialize it: other nodes)
 * and as text around the value's text exactly as the client sent it, so that a target on this
 * machine gets it without the value being serialized again (the native /ws protocol does the
 * same). `type` is one of the dialect's own message types (plain ASCII, nothing to escape);
 * without `valueText` (its key was escaped in the frame), the value is serialized.
 */
export function forwardedSignal(type: string, value: unknown, valueText: string | undefined): { payload: ForwardedSignal; payloadJson: string } {
  const v = value ?? null;
  return { payload: { t: type, v }, payloadJson: `{"t":"${type}","v":${valueText ?? JSON.stringify(v)}}` };
}

/**
 * A dialect peer's connection: the core sends it its own messages (peer_joined, signal, matched,
 * error, ...), wherever they come from — this process, another worker's link, another node's
 * adapter broadcast — and the dialect translates each into its own vocabulary here, or drops it.
 * Nothing of the native protocol ever reaches a dialect client as is.
 */
export abstract class DialectConnection extends WsConnection {
  /** The frame for one core message other than a signal in this dialect's vocabulary; undefined drops it. */
  protected abstract translate(type: string, body: Body): string | undefined;

  /**
   * The frame of a signal of the dialect's type `t` from `from` (the sender's identity), carrying
   * `valueText`: the forwarded value as JSON text, spliced into the frame as is. Undefined drops it.
   */
  protected abstract signalFrame(t: string, from: string, valueText: string, ts: number): string | undefined;

  override send(type: string, body: Body): void {
    const frame = type === "signal" ? this.signalOf(body) : this.translate(type, body);
    if (frame !== undefined) this.write(frame);
  }

  override sendEncoded(type: string, bodyJson: string): void {
    // A signal from this machine arrives as the text its sender's binding built: spliced, not parsed.
    const parts = type === "signal" ? signalParts(bodyJson) : undefined;
    if (parts === undefined) {
      this.send(type, JSON.parse(bodyJson) as Body);
      return;
    }
    const frame = this.signalFrame(parts.t, parts.from, parts.valueText, parts.ts);
    if (frame !== undefined) this.write(frame);
  }

  private signalOf(body: Body): string | undefined {
    const payload = body.payload as Partial<ForwardedSignal> | undefined;
    if (typeof payload?.t !== "string" || body.from === undefined) return undefined;
    return this.signalFrame(payload.t, body.from, JSON.stringify(payload.v ?? null), body.ts ?? Date.now());
  }

  override deliverEncoded(packets: unknown[]): void {
    for (const packet of packets) {
      const message = typeof packet === "string" ? eventOfPacket(packet) : undefined;
      if (message !== undefined) this.send(message[0], message[1]);
    }
  }

  /** Sends a frame the dialect built itself (a reply, a greeting). */
  sendFrame(frame: string): void {
    this.write(frame);
  }
}

const PAYLOAD_START = '{"t":"';
const VALUE_KEY = '","v":';

/**
 * The parts of a signal body serialized around a forwardedSignal payload (the core's
 * `{"from":…,"to":…,"payload":…,"ts":…}`), read without parsing the value; undefined for any other
 * shape (then the body is parsed).
 */
export function signalParts(bodyJson: string): { t: string; from: string; valueText: string; ts: number } | undefined {
  const payload = memberText(bodyJson, "payload");
  const from = memberText(bodyJson, "from");
  const ts = memberText(bodyJson, "ts");
  if (payload === undefined || from === undefined || ts === undefined || !payload.startsWith(PAYLOAD_START)) return undefined;
  const typeEnd = payload.indexOf(VALUE_KEY, PAYLOAD_START.length);
  if (typeEnd < 0 || payload.charCodeAt(payload.length - 1) !== 125 /* } */) return undefined;
  const t = payload.slice(PAYLOAD_START.length, typeEnd);
  if (t.includes('"') || t.includes("\\")) return undefined;
  return { t, from: JSON.parse(from) as string, valueText: payload.slice(typeEnd + VALUE_KEY.length, -1), ts: Number(ts) };
}

/**
 * The event of a Socket.IO-encoded packet as the adapter hands it over (`2["type",{...}]`: an
 * event of the main namespace without ack id); undefined for any other shape.
 */
export function eventOfPacket(packet: string): [string, Body] | undefined {
  if (!packet.startsWith('2["')) return undefined;
  const event: unknown = JSON.parse(packet.slice(1));
  if (!Array.isArray(event) || typeof event[0] !== "string" || typeof event[1] !== "object" || event[1] === null) return undefined;
  return [event[0], event[1] as Body];
}
