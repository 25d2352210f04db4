import type { AdminAnswer, AdminRequest } from "../admin/admin-api.ts";
import type { Sender } from "../backends/cluster/channel.ts";
import type { AdminResponseMessage, PrimaryToWorker } from "../protocol/cluster-messages.ts";

export interface AdminForwardingOptions {
  /** The ready workers' channels; each request goes to the next one in turn. */
  readonly workers: () => readonly Sender<PrimaryToWorker>[];
  /** How long a worker may take to answer before the request is answered 503. */
  readonly timeoutMs: number;
}

const unavailable = (message: string): AdminAnswer => ({ status: 503, body: JSON.stringify({ error: message }) });

/**
 * The cluster primary's side of the admin API: every request the machine's admin listener takes
 * goes to one ready worker (in turn) as an `admin-request` with an id of this primary, and the
 * worker's `admin-response` with that id is the answer. Each worker answers for the whole
 * deployment (its server reaches every process), so one is enough. No ready worker, or no answer
 * within `timeoutMs`: 503, and an answer that comes later is dropped.
 */
export class AdminForwarding {
  private readonly pending = new Map<number, { resolve: (answer: AdminAnswer) => void; timer: NodeJS.Timeout }>();
  private nextId = 1;
  private turn = 0;

  constructor(private readonly options: AdminForwardingOptions) {}

  /** Resolves with the worker's answer, or 503; never rejects. */
  forward(request: AdminRequest): Promise<AdminAnswer> {
    const workers = this.options.workers();
    const worker = workers[this.turn++ % Math.max(1, workers.length)];
    if (worker === undefined) return Promise.resolve(unavailable("no worker is ready"));
    const id = this.nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolve(unavailable(`no worker answered within ${this.options.timeoutMs} ms`));
      }, this.options.timeoutMs);
      this.pending.set(id, { resolve, timer });
      worker.send({ ps: "admin-request", id, method: request.method, path: request.path, body: request.body });
    });
  }

  /** Takes a worker's answer (checked by the primary's guard). */
  receive(message: AdminResponseMessage): void {
    const pending = this.pending.get(message.id);
    if (pending === undefined) return;
    this.pending.delete(message.id);
    clearTimeout(pending.timer);
    pending.resolve({ status: message.status, body: message.body, ...(message.allow === undefined ? {} : { allow: message.allow }) });
  }

  /** Answers every request still waiting with 503 (the primary is stopping). Safe to call twice. */
  close(): void {
    for (const [id, pending] of this.pending) {
      clearTimeout(pending.timer);
      pending.resolve(unavailable("the server is stopping"));
      this.pending.delete(id);
    }
  }
}
