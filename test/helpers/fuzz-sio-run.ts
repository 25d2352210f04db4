import type { Batch } from "./fuzz-frames.ts";
import { isPlainObject } from "./fuzz-json.ts";
import { DELIVERY_TYPES, DIRECT_TYPES, answerProblem, barrierProblem, beforeRegister, brief, refusalProblem, sioWire, type Answer } from "./fuzz-protocol.ts";
import { ANSWER_TIMEOUT_MS, RunFailure, checkWitness, describeFrame, expectedDeliveries, fingerprintIn, join, newContext, register, sentinels, type Lane } from "./fuzz-runs.ts";
import { RawSocketIo, type SioInbound } from "./fuzz-wire.ts";

/**
 * One fuzz run over Socket.IO, spoken by hand (see fuzz-runs.ts). Every well-formed event carries
 * an ack id, so its answer is the ack with that id; a bad packet is answered by its ack when it
 * carries a usable id, else by an `error` event, which are counted. A last ack'd ping closes the
 * batch: the server handles a connection's requests in order, so every answer is in by its ack.
 */

/** Sends the event `42<id>[type, body]`. */
function emit(client: RawSocketIo, id: string, type: string, body: unknown): void {
  client.raw.send(`42${id}${JSON.stringify([type, body])}`, false);
}

export async function runSioBatch(lane: Lane, batch: Batch): Promise<void> {
  const context = newContext(lane);
  let nextId = 1_000;
  const newId = (): string => String(nextId++);
  const sentIds = (id: string): boolean => /^[0-9]+$/.test(id) && Number(id) >= 1_000 && Number(id) < nextId;
  const client = await RawSocketIo.open(lane.server.http);
  try {
    const acks = new Map<string, Answer>();
    const errorEvents: Answer[] = [];
    const problems: string[] = [];
    const waiting = new Map<string, () => void>();
    client.onPacket((inbound: SioInbound) => {
      if (inbound.kind === "ack") {
        if (!sentIds(inbound.id)) problems.push(`an ack for id ${JSON.stringify(inbound.id)}, which no frame carried: ${brief(inbound.args)}`);
        if (acks.has(inbound.id)) problems.push(`a second ack for id ${inbound.id}: ${brief(inbound.args)}`);
        acks.set(inbound.id, (isPlainObject(inbound.args) ? inbound.args : { type: undefined, value: inbound.args }) as Answer);
        waiting.get(inbound.id)?.();
      } else if (inbound.kind === "event") {
        const body = isPlainObject(inbound.args[0]) ? inbound.args[0] : {};
        if (inbound.name === "error") errorEvents.push({ ...body, type: "error" });
        else if (typeof inbound.name !== "string" || !DELIVERY_TYPES.has(inbound.name)) {
          problems.push(DIRECT_TYPES.has(String(inbound.name)) ? `a reply sent as an event instead of an ack: ${brief(inbound)}` : `an event of no type the protocol defines: ${brief(inbound)}`);
        }
      } else problems.push(`an unexpected packet: ${brief(inbound.text)}`);
    });
    let closed: string | undefined;
    client.raw.onClose((close) => {
      closed = `${close.code} ${close.reason}`;
      for (const wake of waiting.values()) wake();
    });
    const ackOf = (id: string): Promise<Answer> =>
      new Promise((resolve, reject) => {
        const settle = (): void => {
          clearTimeout(timer);
          waiting.delete(id);
          const answer = acks.get(id);
          if (answer !== undefined) resolve(answer);
          else reject(new RunFailure(`the connection closed (${closed ?? "?"}) before the ack for id ${id}`));
        };
        const timer = setTimeout(() => {
          waiting.delete(id);
          reject(new RunFailure(`no ack for id ${id} within ${ANSWER_TIMEOUT_MS}ms`));
        }, ANSWER_TIMEOUT_MS);
        if (acks.has(id) || closed !== undefined) settle();
        else waiting.set(id, settle);
      });

    /** Emits well-formed requests with acks and checks the ack types are exactly `replies`. */
    const exchange = async (requests: readonly object[], replies: readonly string[], what: string): Promise<Answer[]> => {
      const ids = requests.map((request) => {
        const id = newId();
        const { type, ...body } = request as { type: string };
        emit(client, id, type, body);
        return id;
      });
      const answers: Answer[] = [];
      for (const id of ids) answers.push(await ackOf(id));
      if (answers.map((answer) => answer.type).join() !== replies.join()) throw new RunFailure(`${what}: expected ${replies.join(", ")}, got ${brief(answers)}`);
      return answers;
    };
    if (batch.registered) await exchange([register(`${context.token}-pre`), join(context.shared)], ["registered", "peer_list"], "register and join before the batch");
    const wires = batch.frames.map((frame) => sioWire(frame, context, newId));
    for (const wire of wires) {
      if (wire.text !== undefined) client.raw.send(wire.text, false);
      for (const binary of wire.binaries) client.raw.send(binary, true);
    }
    const barrier = newId();
    emit(client, barrier, "ping", {});
    lane.framesSent += wires.length;
    const barrierAnswer = await ackOf(barrier).catch((error: unknown) => {
      const known = problems.length > 0 ? `; before that: ${problems.join("; ")}` : "";
      throw new RunFailure(`${error instanceof Error ? error.message : String(error)} (the barrier after the batch)${known}`);
    });
    if (problems.length > 0) throw new RunFailure(problems.join("; "));

    let registered = batch.registered;
    let fingerprint = batch.registered ? context.selfFp : undefined;
    const refused: boolean[] = [];
    let unacknowledgedBad = 0;
    for (const [i, wire] of wires.entries()) {
      const answer = wire.ackId === undefined ? undefined : acks.get(wire.ackId);
      refused.push(answer?.type === "error");
      if (wire.expect.kind === "bad" && answer === undefined) {
        unacknowledgedBad++;
        continue;
      }
      const problem = answerProblem(beforeRegister(wire.expect, registered), answer, "sio");
      if (problem !== undefined) throw new RunFailure(`${describeFrame(batch.frames, i)}: ${problem}`);
      if (answer?.type === "registered" && isPlainObject(answer.payload)) {
        registered = true;
        fingerprint = answer.payload["fingerprint"] as string;
      }
    }
    if (errorEvents.length !== unacknowledgedBad) {
      const bad = wires.flatMap((wire, i) => (wire.expect.kind === "bad" && (wire.ackId === undefined || !acks.has(wire.ackId)) ? [describeFrame(batch.frames, i)] : []));
      throw new RunFailure(`${unacknowledgedBad} bad frame(s) without an ack need one error event each, got ${errorEvents.length}: frames ${bad.join(" | ")}; error events ${brief(errorEvents)}`);
    }
    for (const event of errorEvents) {
      const problem = refusalProblem(event, [400]);
      if (problem !== undefined) throw new RunFailure(`error event: ${problem}`);
    }
    const barrierIssue = barrierProblem(registered, barrierAnswer);
    if (barrierIssue !== undefined) throw new RunFailure(barrierIssue);

    const epilogue = [...(registered ? [] : [register(`${context.token}-post`)]), join(context.shared), ...sentinels(context), { type: "ping" }];
    const answers = await exchange(epilogue, [...(registered ? [] : ["registered"]), "peer_list", "ok", "ok", "pong"], "after the batch: register, join, sentinels and ping");
    await checkWitness(lane, fingerprint ?? fingerprintIn(answers[0]), expectedDeliveries(wires.map((wire) => wire.expect), refused, context));
  } finally {
    client.close();
  }
}
