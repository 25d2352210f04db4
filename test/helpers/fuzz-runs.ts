import { sha256 } from "./peers.ts";
import { isPlainObject, type RunContext } from "./fuzz-json.ts";
import type { Witness } from "./fuzz-peers.ts";
import { brief, deliveryToWitness, showFrame, type Answer, type Expectation, type Frame } from "./fuzz-protocol.ts";

/**
 * What the runs of both transports share (fuzz-ws-run.ts, fuzz-sio-run.ts). One run of a fuzz
 * property: a fresh connection (registered and in the lane's shared namespace, or not), a batch
 * of generated frames sent at once, every answer checked against the frame it belongs to; then,
 * registered if it was not, the connection rejoins the shared namespace, sends the witness two
 * sentinels and gets its pong, and what the lane's witness received from the run is compared with
 * what the run was allowed to deliver. A run throws a RunFailure that names the frame and the
 * answer when anything is off.
 */

export interface Lane {
  readonly name: string;
  readonly server: { readonly http: string; readonly ws: string };
  readonly shared: string;
  readonly witness: Witness;
  readonly witnessFp: string;
  readonly witnessAlias: string;
  /** Generated frames sent so far (barriers, registration and sentinels not counted). */
  framesSent: number;
  /** Deliveries the witness was checked to have received (and nothing else). */
  deliveriesChecked: number;
}

/** How long a run waits for the answers to its batch before it fails. */
export const ANSWER_TIMEOUT_MS = 10_000;
const WITNESS_TIMEOUT_MS = 5_000;

let runCounter = 0;

/** A context no other run shares: its token prefixes its names and keys. */
export function newContext(lane: Lane): RunContext {
  const token = `${lane.name}${(runCounter++).toString(36)}`;
  return { shared: lane.shared, token, witnessFp: lane.witnessFp, witnessAlias: lane.witnessAlias, selfFp: sha256(`${token}-pre`) };
}

export class RunFailure extends Error {
  override name = "RunFailure";
}

export const describeFrame = (frames: readonly Frame[], index: number): string => `frame #${index} ${showFrame(frames[index] as Frame)}`;

/** Counts what the run was allowed to deliver to the witness, frame by frame, given each frame's answer. */
export function expectedDeliveries(expectations: readonly Expectation[], refused: readonly boolean[], context: RunContext): { signal: number; relay: number; broadcast: number } {
  const counts = { signal: 0, relay: 0, broadcast: 0 };
  expectations.forEach((expect, i) => {
    const type = refused[i] ? undefined : deliveryToWitness(expect, context);
    if (type === "signal" || type === "relay" || type === "broadcast") counts[type]++;
  });
  return counts;
}

export async function checkWitness(lane: Lane, fingerprint: string, expected: { signal: number; relay: number; broadcast: number }): Promise<void> {
  const got = await lane.witness.settled(fingerprint, WITNESS_TIMEOUT_MS);
  lane.witness.forget(fingerprint);
  const unexpected = lane.witness.unexpected.splice(0);
  if (unexpected.length > 0) throw new RunFailure(`the witness received what no peer may send it: ${brief(unexpected)}`);
  const actual = { signal: got.signal, relay: got.relay, broadcast: got.broadcast };
  if (JSON.stringify(actual) !== JSON.stringify(expected)) {
    throw new RunFailure(`the witness received ${JSON.stringify(actual)} from this run; the frames that were not refused allow exactly ${JSON.stringify(expected)}`);
  }
  lane.deliveriesChecked += expected.signal + expected.relay + expected.broadcast;
}

/** Requests the setup and the epilogue of a run send, identical on both transports. */
export const register = (publicKey: string): object => ({ type: "register", payload: { public_key: publicKey } });
export const join = (namespace: string): object => ({ type: "join", payload: { namespace } });
/** The signal and the broadcast that close a run (see Witness.settled). */
export const sentinels = (context: RunContext): object[] => [
  { type: "signal", to: context.witnessFp, payload: { sentinel: `sentinel-${context.token}` } },
  { type: "broadcast", payload: { namespace: context.shared, data: { sentinel: `sentinel-${context.token}` } } },
];
export const fingerprintIn = (answer: Answer | undefined): string => String(isPlainObject(answer?.payload) ? answer.payload["fingerprint"] : undefined);
