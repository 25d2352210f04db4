import { exhaustive, type LimitsCalls, type LimitsRequest, type LimitsResult, type LimitsResults, type SavedBudgetRecord } from "../../protocol/cluster-messages.ts";
import { coalescing, withoutStack, type Sender } from "./channel.ts";
import type { BudgetStore, HandOver, SavedBudget } from "../budget-store.ts";
import { createMemoryRegistrationLimits, type RegistrationLimits, type RegistrationRefusal } from "../registration-limiter.ts";
import { withFields } from "../../internals/object-copy.ts";

export interface ClusterLimitsOptions {
  /** How long a call may wait for the primary (a hand-over take: this plus its wait). */
  callTimeoutMs: number;
  /** Decides registrations while the primary does not answer. Default: in-memory limits of this worker at the default rates. */
  insurance?: RegistrationLimits;
}

interface Pending {
  resolve: (value: Extract<LimitsResult, { ok: true }>["value"]) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

type Call = LimitsRequest extends infer R ? (R extends LimitsRequest ? Omit<R, "id"> : never) : never;

/**
 * A worker's end of the limits the cluster primary keeps for the machine (LimitsHost): the
 * registration limits and the budget store of every worker, over the cluster IPC channel. Each call
 * has an id of this client, expects exactly one `limits-result` with it and gives up after
 * `callTimeoutMs` (a hand-over take: plus its wait); a result that comes later is dropped. A
 * registration the primary does not answer in time is decided by the in-memory insurance limiter,
 * as the Redis limiter does while Redis is down; a budget call that times out rejects, and
 * MessageBudgets gives the connection a fresh budget. Once the primary is gone (`primaryGone`) or
 * the client is closed, every waiting call fails at once and every later one without being sent
 * (registrations then go to the insurance limiter). The worker's dispatcher hands this client
 * every LimitsResults (`receive`).
 */
export class ClusterLimits {
  readonly budgets: BudgetStore;
  readonly registrations: RegistrationLimits;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  /**
   * Set once no answer can come (closed, or the primary gone): what calls fail with from then on,
   * one error for all (see ReplicatedStore's).
   */
  private refusal: Error | undefined;
  /** Set once the machine stops (machineStopping): budgets are no longer kept. */
  private alone = false;
  /** Calls made in one go go to the primary as one message (see coalescing). */
  private readonly outbox: (call: LimitsRequest) => void;

  constructor(link: Sender<LimitsCalls>, options: ClusterLimitsOptions) {
    this.outbox = coalescing<LimitsRequest>((calls) => link.send(calls.length === 1 ? (calls[0] as LimitsRequest) : { ps: "limits-batch", messages: calls }));
    const insurance = options.insurance ?? createMemoryRegistrationLimits();
    this.registrations = {
      // Both limits in one call: a round trip to the primary is most of what a limit costs a worker.
      consume: (address, key) =>
        this.call({ ps: "limits-register", key, address: address ?? null }, options.callTimeoutMs).then(
          (refusal) => (refusal === "address" || refusal === "key" ? refusal : undefined),
          () => insurance.consume(address, key),
        ),
    };
    this.budgets = {
      save: async (fingerprint, connectionId, tokens, ttlMs) => {
        if (this.alone) return;
        await this.call({ ps: "limits-save", fingerprint, connectionId, tokens, ttlMs }, options.callTimeoutMs);
      },
      take: async (fingerprint, handOver?: HandOver) => {
        const waitMs = handOver?.waitMs ?? 0;
        const value = await this.call({ ps: "limits-take", fingerprint, from: handOver?.from ?? null, waitMs }, options.callTimeoutMs + waitMs);
        return isSavedBudget(value) ? value : undefined;
      },
      close: () => this.close(),
    };
  }

  /**
   * The primary stops the whole machine: no connection will come back to take a budget, so the
   * budgets of the connections this worker closes are not sent (see ReplicatedStore.machineStopping).
   */
  machineStopping(): void {
    this.alone = true;
  }

  /** Fails every call still waiting for the primary, and every later one. Safe to call twice. */
  close(): Promise<void> {
    this.refuse("limits closed");
    return Promise.resolve();
  }

  /** The channel to the primary closed: every call waiting for it fails now, every later one at once. */
  primaryGone(): void {
    this.refuse("the cluster primary is gone");
  }

  private refuse(reason: string): void {
    const refusal = (this.refusal ??= withoutStack(new Error(reason)));
    for (const [id, pending] of this.pending) {
      clearTimeout(pending.timer);
      pending.reject(refusal);
      this.pending.delete(id);
    }
  }

  private call(call: Call, timeoutMs: number): Promise<Extract<LimitsResult, { ok: true }>["value"]> {
    if (this.refusal !== undefined) return Promise.reject(this.refusal);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`the cluster primary did not answer ${call.ps} in time`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.outbox(withFields(call, { id }) as LimitsRequest);
    });
  }

  /** Handles the primary's answers (checked by the worker's guard). */
  receive(message: LimitsResults): void {
    switch (message.ps) {
      case "limits-result":
        this.settle(message);
        break;
      case "limits-batch":
        for (const result of message.messages) this.settle(result);
        break;
      default:
        exhaustive(message);
    }
  }

  private settle(message: LimitsResult): void {
    const pending = this.pending.get(message.id);
    if (pending === undefined) return; // timed out already
    this.pending.delete(message.id);
    clearTimeout(pending.timer);
    if (message.ok) pending.resolve(message.value);
    else pending.reject(new Error(message.message));
  }
}

function isSavedBudget(value: RegistrationRefusal | SavedBudgetRecord | null): value is SavedBudget {
  return typeof value === "object" && value !== null;
}
