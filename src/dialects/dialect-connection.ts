import type { Body } from "../protocol/envelope.ts";
import { WsConnection } from "../transport/ws-connection.ts";

/**
 * A dialect peer's connection: the core sends it its own messages (peer_joined, signal, matched,
 * error, ...), wherever they come from — this process, another worker's link, another node's
 * adapter broadcast — and the dialect translates each into its own vocabulary here, or drops it.
 * Nothing of the native protocol ever reaches a dialect client as is.
 */
export abstract class DialectConnection extends WsConnection {
  /** The frame for one core message in this dialect's vocabulary; undefined drops it. */
  protected abstract translate(type: string, body: Body): string | undefined;

  override send(type: string, body: Body): void {
    const frame = this.translate(type, body);
    if (frame !== undefined) this.write(frame);
  }

  override sendEncoded(type: string, bodyJson: string): void {
    this.send(type, JSON.parse(bodyJson) as Body);
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
