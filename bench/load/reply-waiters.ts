import type { Envelope } from "./clients.ts";

interface Waiter {
  readonly replyTypes: readonly string[];
  resolve(message: Envelope): void;
}

/**
 * Requests waiting for their direct reply, oldest first: a reply (or an `error`) goes to the first
 * waiter that expects its type. Shared by the library client and the wire-level client.
 */
export class ReplyWaiters {
  private readonly waiters: Waiter[] = [];

  /** Waits for the next message of one of `replyTypes` (or `error`); rejects after `timeoutMs`. */
  wait(request: string, replyTypes: readonly string[], timeoutMs: number): Promise<Envelope> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const index = this.waiters.indexOf(waiter);
        if (index >= 0) this.waiters.splice(index, 1);
        reject(new Error(`no reply to ${request} within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter: Waiter = {
        replyTypes,
        resolve: (message) => {
          clearTimeout(timer);
          resolve(message);
        },
      };
      this.waiters.push(waiter);
    });
  }

  /** Hands `message` to the first waiter expecting `type`; false when none does. */
  settle(type: string, message: () => Envelope): boolean {
    for (let index = 0; index < this.waiters.length; index++) {
      const waiter = this.waiters[index] as Waiter;
      if (type === "error" || waiter.replyTypes.includes(type)) {
        this.waiters.splice(index, 1);
        waiter.resolve(message());
        return true;
      }
    }
    return false;
  }
}
