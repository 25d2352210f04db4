/**
 * A small typed event emitter that runs in browsers and Node alike (no EventTarget subclassing,
 * no Node `events`). A listener that throws does not keep the others from running: its error is
 * reported on the next turn, where it surfaces as an uncaught error rather than disappearing.
 */
export class Emitter<Events extends { [K in keyof Events]: unknown }> {
  private readonly listeners = new Map<keyof Events, Set<(value: never) => void>>();

  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof Events>(type: K, listener: (value: Events[K]) => void): () => void {
    let set = this.listeners.get(type);
    if (set === undefined) this.listeners.set(type, (set = new Set()));
    set.add(listener as (value: never) => void);
    return () => this.off(type, listener);
  }

  /** Adds a listener that runs once. */
  once<K extends keyof Events>(type: K, listener: (value: Events[K]) => void): () => void {
    const off = this.on(type, (value) => {
      off();
      listener(value);
    });
    return off;
  }

  off<K extends keyof Events>(type: K, listener: (value: Events[K]) => void): void {
    this.listeners.get(type)?.delete(listener as (value: never) => void);
  }

  /** The next event of `type` as a promise; rejects after `timeoutMs` when given. */
  next<K extends keyof Events>(type: K, timeoutMs?: number): Promise<Events[K]> {
    return new Promise((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const off = this.once(type, (value) => {
        if (timer !== undefined) clearTimeout(timer);
        resolve(value);
      });
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          off();
          reject(new Error(`no ${String(type)} event within ${timeoutMs} ms`));
        }, timeoutMs);
      }
    });
  }

  protected emit<K extends keyof Events>(type: K, value: Events[K]): void {
    const set = this.listeners.get(type);
    if (set === undefined) return;
    for (const listener of [...set]) {
      try {
        (listener as (value: Events[K]) => void)(value);
      } catch (error) {
        setTimeout(() => {
          throw error;
        }, 0);
      }
    }
  }
}
