import type { Batch } from "./fuzz-frames.ts";
import { isPlainObject } from "./fuzz-json.ts";
import { DELIVERY_TYPES, DIRECT_TYPES, answerProblem, barrierProblem, beforeRegister, brief, wsWire, type Answer, type Expectation, type Frame } from "./fuzz-protocol.ts";
import { ANSWER_TIMEOUT_MS, RunFailure, checkWitness, describeFrame, expectedDeliveries, fingerprintIn, join, newContext, register, sentinels, type Lane } from "./fuzz-runs.ts";
import { RawSocket } from "./fuzz-wire.ts";

/**
 * One fuzz run over raw /ws (see fuzz-runs.ts). /ws carries no request ids: a client can tell
 * which request an answer belongs to only by order, which the server keeps (it handles a
 * connection's requests strictly in order). So answers are matched to frames in order, and one
 * that arrives out of order fails the run.
 */

const PING = Buffer.from('{"type":"ping"}');

/** A /ws message; text that is not JSON becomes a message of its own that nothing expects. */
function parseAnswer(text: string): Answer {
  try {
    const value: unknown = JSON.parse(text);
    return isPlainObject(value) ? value : { type: "not-an-object", value };
  } catch {
    return { type: "not-json", text };
  }
}

type WsSlot = { readonly frame: number } | { readonly barrier: true };

/**
 * Matches /ws answers to frames in order. After every frame that may go unanswered (a silent
 * request) a `ping` goes out, so an answer is always attributable: the frame's own error, or the
 * barrier's pong. Deliveries from other peers are set aside (a `matched` is a delivery when this
 * connection's ticket was not the one that completed the group, i.e. it is not the last peer).
 */
class WsMatcher {
  private position = 0;
  readonly answers: (Answer | undefined)[];
  registered: boolean;
  fingerprint: string | undefined;
  private finish: ((error?: Error) => void) | undefined;
  readonly done: Promise<void>;

  constructor(
    private readonly slots: readonly WsSlot[],
    private readonly expectations: readonly Expectation[],
    private readonly frames: readonly Frame[],
    setup: { registered: boolean; fingerprint: string | undefined },
  ) {
    this.answers = expectations.map(() => undefined);
    this.registered = setup.registered;
    this.fingerprint = setup.fingerprint;
    this.done = new Promise((resolve, reject) => {
      this.finish = (error) => (error === undefined ? resolve() : reject(error));
    });
  }

  get complete(): boolean {
    return this.position >= this.slots.length;
  }

  /** Every direct answer so far, in arrival order, for failure messages. */
  private readonly arrived: string[] = [];

  fail(message: string): void {
    this.finish?.(new RunFailure(`${message}\n  answers in arrival order: ${this.arrived.join(" | ") || "none"}`));
    this.finish = undefined;
  }

  /** Where the matcher stands, for failure messages. */
  waitingFor(): string {
    const slot = this.slots[this.position];
    if (slot === undefined) return "nothing";
    return "frame" in slot ? describeFrame(this.frames, slot.frame) : "a barrier ping";
  }

  receive(text: string): void {
    if (this.finish === undefined) return;
    const message = parseAnswer(text);
    if (message.type === "not-json" || message.type === "not-an-object") {
      this.fail(`the server sent something that is not a JSON object: ${brief(text)}`);
      return;
    }
    if (typeof message.type !== "string" || !DIRECT_TYPES.has(message.type)) {
      if (typeof message.type !== "string" || !DELIVERY_TYPES.has(message.type)) this.fail(`a message of no type the protocol defines: ${brief(message)}`);
      return;
    }
    if (message.type === "matched" && this.isMatchedDelivery(message)) return;
    this.arrived.push(summary(message));
    const problem = this.take(message);
    if (problem !== undefined) this.fail(problem);
    else if (this.complete) {
      this.finish?.();
      this.finish = undefined;
    }
  }

  private isMatchedDelivery(message: Answer): boolean {
    const peers = isPlainObject(message.payload) ? message.payload["peers"] : undefined;
    const last: unknown = Array.isArray(peers) ? peers[peers.length - 1] : undefined;
    return this.fingerprint !== undefined && isPlainObject(last) && last["fingerprint"] !== this.fingerprint;
  }

  /** Consumes `message` for the slot(s) it answers; returns a problem if it answers none correctly. */
  private take(message: Answer): string | undefined {
    for (;;) {
      const slot = this.slots[this.position];
      if (slot === undefined) return `an answer after the last barrier: ${brief(message)}`;
      if (!("frame" in slot)) {
        this.position++;
        return barrierProblem(this.registered, message);
      }
      const expect = beforeRegister(this.expectations[slot.frame] as Expectation, this.registered);
      const isBarrierError = message.type === "error" && isPlainObject(message.payload) && message.payload["ref"] === "ping";
      if (expect.kind === "silent" && (message.type !== "error" || isBarrierError)) {
        // Nothing came for this frame: the message belongs to the barrier behind it.
        this.position++;
        continue;
      }
      this.position++;
      this.answers[slot.frame] = message;
      const problem = answerProblem(expect, message, "ws");
      if (problem !== undefined) return `${describeFrame(this.frames, slot.frame)}: ${problem}`;
      if (message.type === "registered" && isPlainObject(message.payload)) {
        this.registered = true;
        this.fingerprint = message.payload["fingerprint"] as string;
      }
      return undefined;
    }
  }
}

/** `pong`, `error 400 (ref join)`, `peer_list`: enough to see which request an answer belongs to. */
function summary(message: Answer): string {
  if (message.type !== "error" || !isPlainObject(message.payload)) return String(message.type);
  const ref = message.payload["ref"];
  return `error ${String(message.payload["code"])} (${typeof ref === "string" ? `ref ${ref}` : "no ref"})`;
}

/**
 * Sends well-formed requests and a ping, and checks that their answers are exactly `replies` then
 * the pong (silent requests that succeed add nothing). For the setup before a batch and the
 * epilogue after it.
 */
async function wsExchange(socket: RawSocket, requests: readonly object[], replies: readonly string[], what: string): Promise<Answer[]> {
  const answers: Answer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => reject(new RunFailure(`${what}: no pong within ${ANSWER_TIMEOUT_MS}ms; got ${brief(answers)}`)), ANSWER_TIMEOUT_MS);
    socket.onText((text) => {
      const message = parseAnswer(text);
      // Nothing here asks for a match: a `matched` is a delivery.
      if (settled || typeof message.type !== "string" || !DIRECT_TYPES.has(message.type) || message.type === "matched") return;
      answers.push(message);
      if (message.type === "pong") {
        settled = true;
        clearTimeout(timer);
        resolve();
      }
    });
  });
  for (const request of requests) socket.send(JSON.stringify(request), false);
  socket.send(PING, false);
  await done;
  const expected = [...replies, "pong"];
  if (answers.map((answer) => answer.type).join() !== expected.join()) throw new RunFailure(`${what}: expected ${expected.join(", ")}, got ${brief(answers)}`);
  return answers;
}

export async function runWsBatch(lane: Lane, batch: Batch): Promise<void> {
  const context = newContext(lane);
  const wires = batch.frames.map((frame) => wsWire(frame, context));
  const expectations = wires.map((wire) => wire.expect);
  const socket = await RawSocket.open(lane.server.ws);
  try {
    if (batch.registered) {
      const setup = [register(`${context.token}-pre`), join(context.shared)];
      await wsExchange(socket, setup, ["registered", "peer_list"], "register and join before the batch");
    }
    const slots: WsSlot[] = [];
    expectations.forEach((expect, frame) => {
      slots.push({ frame });
      if (expect.kind === "silent") slots.push({ barrier: true });
    });
    slots.push({ barrier: true });
    const matcher = new WsMatcher(slots, expectations, batch.frames, { registered: batch.registered, fingerprint: batch.registered ? context.selfFp : undefined });
    socket.onText((text) => matcher.receive(text));
    socket.onClose((closed) => matcher.fail(`the connection closed (${closed.code} ${closed.reason}) while waiting for ${matcher.waitingFor()}`));
    for (const [i, wire] of wires.entries()) {
      socket.send(wire.data, wire.binary);
      if (expectations[i]?.kind === "silent") socket.send(PING, false);
    }
    socket.send(PING, false);
    lane.framesSent += wires.length;
    const timer = setTimeout(() => matcher.fail(`no answer within ${ANSWER_TIMEOUT_MS}ms while waiting for ${matcher.waitingFor()}`), ANSWER_TIMEOUT_MS);
    try {
      await matcher.done;
    } finally {
      clearTimeout(timer);
    }
    // The connection still works: registered (now, if the batch did not), it rejoins the shared
    // namespace, sends the witness its sentinels and gets its pong.
    const refused = matcher.answers.map((answer) => answer !== undefined && answer.type === "error");
    const epilogue = [...(matcher.registered ? [] : [register(`${context.token}-post`)]), join(context.shared), ...sentinels(context)];
    const answers = await wsExchange(socket, epilogue, [...(matcher.registered ? [] : ["registered"]), "peer_list"], "after the batch: register, join, sentinels and ping");
    const fingerprint = matcher.fingerprint ?? fingerprintIn(answers[0]);
    await checkWitness(lane, fingerprint, expectedDeliveries(expectations, refused, context));
  } finally {
    socket.close();
  }
}
