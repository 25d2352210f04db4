/**
 * What nodes send each other on a peer's channel (backends/peer-channels.ts): a targeted message
 * with what the target's node needs to decide whether it may be delivered, or the refusal that
 * node sends back to the sender. A frame is a JSON header, a newline, then (for a message) the
 * payload's JSON text as it was received, which the target's node never parses: it writes it into
 * the body it sends, with the target's fingerprint (the sender may have named it by its alias).
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
  /** The body's `ts`: when the sender's node handled it (ms since the epoch). */
  readonly ts: number;
  /** The payload, serialized. */
  readonly payloadJson: string;
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

export function encodeTargeted(type: string, from: string, scopes: readonly string[], receivedAt: number, ts: number, payloadJson: string): string {
  // JSON text never holds a raw newline, so the first one ends the header.
  return `${JSON.stringify([TARGETED, type, from, receivedAt, ts, scopes])}\n${payloadJson}`;
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
  const [kind, a, b, c, d, e] = header as unknown[];
  if (kind === TARGETED && typeof a === "string" && typeof b === "string" && typeof c === "number" && typeof d === "number" && isStringArray(e)) {
    return { kind: "targeted", type: a, from: b, receivedAt: c, ts: d, scopes: e, payloadJson: frame.slice(end + 1) };
  }
  if (kind === REFUSAL && typeof a === "string" && typeof b === "number" && typeof c === "string") {
    return { kind: "refusal", ref: a, code: b, message: c };
  }
  return undefined;
}

const isStringArray = (value: unknown): value is string[] => Array.isArray(value) && value.every((entry) => typeof entry === "string");
