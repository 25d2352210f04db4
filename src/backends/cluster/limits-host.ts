import { exhaustive, type LimitsCalls, type LimitsRequest, type LimitsResult, type LimitsResults } from "../../protocol/cluster-messages.ts";
import { coalescing, type Sender } from "./channel.ts";
import type { BudgetStore } from "../budget-store.ts";
import { MemoryBudgetStore } from "../memory/memory-budget-store.ts";
import { createMemoryRegistrationLimits, type RegistrationLimits } from "../registration-limiter.ts";

/** Anything the host can answer on: one worker's end of the IPC channel. */
export type LimitsLink = Sender<LimitsResults>;

/**
 * The limits the cluster primary keeps for every worker of the machine (the workers' side is
 * ClusterLimits): registrations per public key and per client address, and the message budgets
 * connections leave behind.
 * Both in this process's memory, exactly as a single-process server keeps them for itself.
 *
 * Calls: each call carries the worker's id and gets exactly one `limits-result` with it, a
 * failure included; the worker gives up on it after its `callTimeoutMs` (see ClusterLimits).
 */
export class LimitsHost {
  /** Each link's results of one go, sent as one message (see coalescing). */
  private readonly outboxes = new WeakMap<LimitsLink, (result: LimitsResult) => void>();

  constructor(
    private readonly budgets: BudgetStore = new MemoryBudgetStore(),
    private readonly registrations: RegistrationLimits = createMemoryRegistrationLimits(),
  ) {}

  /** Handles a worker's calls (checked by the primary's guard); each answer goes back on `link` with its call's id. */
  receive(link: LimitsLink, message: LimitsCalls): void {
    switch (message.ps) {
      case "limits-batch":
        for (const call of message.messages) this.answer(link, call);
        break;
      case "limits-register":
      case "limits-save":
      case "limits-take":
        this.answer(link, message);
        break;
      default:
        exhaustive(message);
    }
  }

  close(): Promise<void> {
    return this.budgets.close();
  }

  private answer(link: LimitsLink, message: LimitsRequest): void {
    let value: Promise<LimitsValue>;
    switch (message.ps) {
      case "limits-register":
        value = this.registrations.consume(message.address ?? undefined, message.key).then((refusal) => refusal ?? null);
        break;
      case "limits-save":
        value = this.budgets.save(message.fingerprint, message.connectionId, message.tokens, message.ttlMs).then(() => null);
        break;
      case "limits-take":
        value = this.budgets
          .take(message.fingerprint, message.from === null ? undefined : { from: message.from, waitMs: message.waitMs })
          .then((budget) => budget ?? null);
        break;
    }
    const send = this.outboxFor(link);
    value.then(
      (result) => send({ ps: "limits-result", id: message.id, ok: true, value: result }),
      (error: unknown) => send({ ps: "limits-result", id: message.id, ok: false, message: (error as Error).message }),
    );
  }

  private outboxFor(link: LimitsLink): (result: LimitsResult) => void {
    let outbox = this.outboxes.get(link);
    if (outbox === undefined) {
      outbox = coalescing<LimitsResult>((results) => link.send(results.length === 1 ? (results[0] as LimitsResult) : { ps: "limits-batch", messages: results }));
      this.outboxes.set(link, outbox);
    }
    return outbox;
  }
}

type LimitsValue = Extract<LimitsResult, { ok: true }>["value"];
