/** One direction of a message channel to another process: what a host answers on, what a client calls on. */
export interface Sender<Out> {
  send(message: Out): void;
}

/** A message channel to one other process (Node's IPC: a cluster worker, a forked child, or the parent). */
export interface Channel<Out, In> extends Sender<Out> {
  /** `handle` is the socket or server Node's IPC sent with the message, if any. */
  onMessage(handler: (message: In, handle?: unknown) => void): void;
}

/**
 * The channel from a child process (cluster worker or forked child) to its parent. Each handler
 * gets the messages that pass `guard`, checked once per handler: give it one handler, the
 * process's dispatcher.
 */
export function parentChannel<Out, In>(guard: (message: unknown) => message is In): Channel<Out, In> {
  if (process.send === undefined) throw new Error("this process has no IPC channel to a parent");
  return {
    send: (message) => {
      try {
        process.send?.(message);
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
