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
 * Returns a send function that coalesces what is sent during one turn of the event loop into
 * one call of `flush` (at `schedule`, by default setImmediate), in order. Each IPC message costs a
 * serialization and a write system call on one side and a read and a parse on the other; under
 * load the store exchanges several messages per turn (a register is a call, an apply to every
 * replica and a result), and in the cluster connect benchmark these writes were the largest item
 * of both the primary's and the workers' profiles.
 */
export function coalescing<T>(flush: (messages: T[]) => void, schedule: Schedule = setImmediate): (message: T) => void {
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
