/**
 * What nodes send each other on a peer's channel (backends/peer-channels.ts): a targeted message
 * with what the target's node needs to decide whether it may be delivered, or the refusal that
 * node sends back to the sender. A frame is a JSON header, a newline, then (for a message) the
 * body exactly as the target is to receive it, so the target's node writes it without parsing it.
 */

/** A signal or relay on its way to its target's node. */
export interface TargetedFrame {
  readonly kind: "targeted";
  /** `signal` or `relay`. */
  readonly type: string;
  /** The sender's fingerprint. */
  readonly from: string;
  /** The adapter rooms of the sender's namespaces and rooms: the target must be in one of them. */
  readonly scopes: readonly string[];
  /** When the sender's node received it (a Metrics.now() stamp, 0 with metrics off). */
  readonly receivedAt: number;
  /** The body the target receives, serialized. */
  readonly bodyJson: string;
}

/** The target's node refused a targeted message: the sender's node tells the sender. */
export interface RefusalFrame {
  readonly kind: "refusal";
  /** The refused request's type: the error's `ref`. */
  readonly ref: string;
  readonly code: number;
  readonly message: string;
}

export type PeerFrame = TargetedFrame | RefusalFrame;

const TARGETED = "t";
const REFUSAL = "r";

export function encodeTargeted(type: string, from: string, scopes: readonly string[], receivedAt: number, bodyJson: string): string {
  // JSON text never holds a raw newline, so the first one ends the header.
  return `${JSON.stringify([TARGETED, type, from, receivedAt, scopes])}\n${bodyJson}`;
}

export function encodeRefusal(ref: string, code: number, message: string): string {
  return `${JSON.stringify([REFUSAL, ref, code, message])}\n`;
}

/** Reads a frame; undefined for anything this version does not know (sent by a newer node, or not a frame). */
export function decodeFrame(frame: string): PeerFrame | undefined {
  const end = frame.indexOf("\n");
  if (end < 0) return undefined;
  let header: unknown;
  try {
    header = JSON.parse(frame.slice(0, end));
  } catch {
    return undefined;
  }
  if (!Array.isArray(header)) return undefined;
  const [kind, a, b, c, d] = header as unknown[];
  if (kind === TARGETED && typeof a === "string" && typeof b === "string" && typeof c === "number" && Array.isArray(d) && d.every((scope) => typeof scope === "string")) {
    return { kind: "targeted", type: a, from: b, receivedAt: c, scopes: d as string[], bodyJson: frame.slice(end + 1) };
  }
  if (kind === REFUSAL && typeof a === "string" && typeof b === "number" && typeof c === "string") {
    return { kind: "refusal", ref: a, code: b, message: c };
  }
  return undefined;
}
