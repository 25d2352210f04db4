/** A message channel to one other process (Node's IPC: a cluster worker, a forked child, or the parent). */
export interface Channel<Out, In> {
  send(message: Out): void;
  onMessage(handler: (message: In) => void): void;
}

/** The channel from a child process (cluster worker or forked child) to its parent. */
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
      process.on("message", (message: unknown) => {
        if (guard(message)) handler(message);
      });
    },
  };
}

/**
 * Returns a send function that coalesces what is sent during one turn of the event loop into
 * one call of `flush` (at setImmediate), in order. Each IPC message costs a serialization and a
 * write system call on one side and a read and a parse on the other; under load the store
 * exchanges several messages per turn (a register is a call, an apply to every replica and a
 * result), and in the cluster connect benchmark these writes were the largest item of both the
 * primary's and the workers' profiles.
 */
export function coalescing<T>(flush: (messages: T[]) => void): (message: T) => void {
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
    setImmediate(drain);
  };
}
