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
      process.send?.(message);
    },
    onMessage: (handler) => {
      process.on("message", (message: unknown) => {
        if (guard(message)) handler(message);
      });
    },
  };
}
