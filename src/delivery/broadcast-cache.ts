import { socketIoPacketToRaw } from "../protocol/envelope.ts";

/**
 * Encodes an adapter broadcast for raw peers once: the adapter hands every recipient of a broadcast
 * the same `encodedPackets` array, so a one-entry cache keyed on its identity converts each
 * broadcast once.
 */
export class BroadcastCache {
  private packets: unknown[] | undefined;
  private frame: Buffer | undefined;

  frameFor(packets: unknown[]): Buffer | undefined {
    if (packets !== this.packets) {
      this.packets = packets;
      const first = packets[0];
      const raw = packets.length === 1 && typeof first === "string" ? socketIoPacketToRaw(first) : undefined;
      this.frame = raw === undefined ? undefined : Buffer.from(raw);
    }
    return this.frame;
  }
}
