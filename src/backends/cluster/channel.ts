import type { Bundle } from "../../protocol/cluster-messages.ts";

/** One direction of a message channel to another process: what a host answers on, what a client calls on. */
export interface Sender<Out> {
  send(message: Out): void;
}

/** A message channel to one other process (Node's IPC: a cluster worker, a forked child, or the parent). */
export interface Channel<Out, In> extends Sender<Out> {
  /** `handle` is the socket or server Node's IPC sent with the message, if any. */
  onMessage(handler: (message: In, handle?: unknown) => void): void;
}

/** The channel to the parent process, which can close for good (the parent exited or was killed). */
export interface ParentChannel<Out, In> extends Channel<Out, In> {
  /**
   * Calls `handler` once when the channel closes (the process's `disconnect` event), and makes it
   * the only listener of that event: Node's cluster module registers one in every worker that exits
   * the process at once, and the handler decides instead (what to close first, and how long that may take).
   */
  onClose(handler: () => void): void;
}

/**
 * Takes the error of a send that could not be written (EPIPE: the parent died, and the channel's
 * close is on its way to onClose). Without a callback, Node would emit it as an 'error' event of
 * the process (a cluster worker's: of its Worker), which nobody listens to: an uncaught exception.
 */
const ignoreSendError = (): void => undefined;

/**
 * The channel from a child process (cluster worker or forked child) to its parent. Each handler
 * gets the messages that pass `guard`, checked once per handler: give it one handler, the
 * process's dispatcher. A message sent once the channel has closed is dropped: the call waiting for
 * its answer fails when the caller learns of the close (`onClose`).
 */
export function parentChannel<Out, In>(guard: (message: unknown) => message is In): ParentChannel<Out, In> {
  if (process.send === undefined) throw new Error("this process has no IPC channel to a parent");
  return {
    send: (message) => {
      if (!process.connected) return;
      try {
        process.send?.(message, undefined, undefined, ignoreSendError);
      } catch (error) {
        // Serialization failed (client data is bounded at the edge, so this is a bug): the call
        // waiting for an answer times out with 503; the process goes on.
        console.error(`could not send to the parent process: ${(error as Error).message}`);
      }
    },
    onMessage: (handler) => {
      process.on("message", (message: unknown, handle: unknown) => {
        if (guard(message)) handler(message, handle);
      });
    },
    onClose: (handler) => {
      process.removeAllListeners("disconnect");
      process.once("disconnect", handler);
    },
  };
}

/** Runs a callback once, in a later turn of the event loop. */
export type Schedule = (callback: () => void) => void;

/**
 * Returns a send function that coalesces what is sent in one go into one call of `flush` (at
 * `schedule`, by default once the microtask queue has drained), in order: the calls a store or
 * limits client makes while handling one message become one message of its kind. The channels'
 * Bundler then writes all that one turn of the event loop sent a process as one IPC message.
 */
export function coalescing<T>(flush: (messages: T[]) => void, schedule: Schedule = queueMicrotask): (message: T) => void {
  let queue: T[] | undefined;
  const drain = (): void => {
    const messages = queue ?? [];
    queue = undefined;
    flush(messages);
  };
  return (message) => {
    if (queue !== undefined) {
      queue.push(message);
      return;
    }
    queue = [message];
    schedule(drain);
  };
}

/**
 * The error with its message as its whole stack: what a call to a closed channel fails with is
 * logged once for each of the peers closing after it, and where it was made tells nothing.
 */
export function withoutStack<E extends Error>(error: E): E {
  error.stack = `${error.name}: ${error.message}`;
  return error;
}

/**
 * Writes what is sent to each process during one turn of the event loop as one IPC message per
 * process (a Bundle, or the message alone when it is the only one), at the turn's end
 * (`schedule`), each process's messages in the order they were sent. The processes are written in
 * the order of the last message each got, so what a turn sends one process last reaches it after
 * what the turn sent the others before: a replica's apply is in its pipe before the caller that
 * made the change gets its result (see StoreHost's flush, which sends in that order).
 *
 * A message that carries a handle (a socket) cannot travel in a bundle: `flush` before sending it,
 * so it keeps its place after what was sent before it.
 */
export class Bundler<M> {
  /** Each process's messages of this turn; a process moves to the end as it gets one. */
  private readonly queues = new Map<Sender<M | Bundle<M>>, M[]>();
  private scheduled = false;

  constructor(private readonly schedule: Schedule = setImmediate) {}

  /** The Sender of the messages to one process, written through `write`. */
  to(write: Sender<M | Bundle<M>>): Sender<M> {
    return { send: (message) => this.add(write, message) };
  }

  /** Writes every message waiting now. */
  flush(): void {
    this.scheduled = false;
    if (this.queues.size === 0) return;
    const queues = [...this.queues];
    this.queues.clear();
    for (const [write, messages] of queues) write.send(messages.length === 1 ? (messages[0] as M) : { ps: "bundle", messages });
  }

  private add(write: Sender<M | Bundle<M>>, message: M): void {
    const queue = this.queues.get(write);
    if (queue === undefined) this.queues.set(write, [message]);
    else {
      queue.push(message);
      this.queues.delete(write);
      this.queues.set(write, queue);
    }
    if (this.scheduled) return;
    this.scheduled = true;
    this.schedule(() => {
      if (this.scheduled) this.flush();
    });
  }
}
