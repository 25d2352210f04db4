import { describe, expect, it } from "vitest";
import { Bundler, coalescing, type Sender } from "../../src/backends/cluster/channel.ts";
import type { Bundle } from "../../src/protocol/cluster-messages.ts";

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe("coalescing", () => {
  it("flushes what is sent in one go (until the microtask queue drains) as one call, in order, and nothing before", async () => {
    const flushed: number[][] = [];
    const send = coalescing<number>((messages) => flushed.push(messages));
    send(1);
    send(2);
    expect(flushed).toEqual([]);
    await Promise.resolve();
    expect(flushed).toEqual([[1, 2]]);
    send(3);
    send(4);
    await nextTurn();
    expect(flushed).toEqual([[1, 2], [3, 4]]);
  });

  it("a message sent while flushing goes out in the next flush, not lost", async () => {
    const flushed: string[][] = [];
    const send = coalescing<string>((messages) => {
      flushed.push(messages);
      if (messages.includes("first")) send("echo");
    });
    send("first");
    await nextTurn();
    expect(flushed).toEqual([["first"], ["echo"]]);
  });
});

/** A process's end of a channel that records what was written to it, and the order of all writes. */
function recorder(name: string, log: string[]): Sender<string | Bundle<string>> & { written: (string | Bundle<string>)[] } {
  const written: (string | Bundle<string>)[] = [];
  return {
    written,
    send: (message) => {
      written.push(message);
      log.push(name);
    },
  };
}

describe("Bundler", () => {
  /** A schedule the test runs by hand. */
  function manual(): { schedule: (callback: () => void) => void; run: () => void } {
    const callbacks: (() => void)[] = [];
    return { schedule: (callback) => callbacks.push(callback), run: () => callbacks.splice(0).forEach((callback) => callback()) };
  }

  it("writes what a turn sends one process as one bundle in order, a lone message as itself, nothing before the turn ends", () => {
    const turn = manual();
    const bundler = new Bundler<string>(turn.schedule);
    const log: string[] = [];
    const a = recorder("a", log);
    const b = recorder("b", log);
    const toA = bundler.to(a);
    const toB = bundler.to(b);
    toA.send("a1");
    toA.send("a2");
    toB.send("b1");
    toA.send("a3");
    expect(log).toEqual([]);
    turn.run();
    expect(a.written).toEqual([{ ps: "bundle", messages: ["a1", "a2", "a3"] }]);
    expect(b.written).toEqual(["b1"]);
    // The process that got the turn's last message is written last.
    expect(log).toEqual(["b", "a"]);
    toB.send("b2");
    turn.run();
    expect(b.written).toEqual(["b1", "b2"]);
  });

  it("flush writes what waits at once, so a message sent beside the bundles (a socket) keeps its place; the turn's end then writes nothing twice", () => {
    const turn = manual();
    const bundler = new Bundler<string>(turn.schedule);
    const log: string[] = [];
    const a = recorder("a", log);
    const toA = bundler.to(a);
    toA.send("before the socket");
    bundler.flush();
    a.send("the socket");
    turn.run();
    expect(a.written).toEqual(["before the socket", "the socket"]);
    toA.send("after");
    turn.run();
    expect(a.written).toEqual(["before the socket", "the socket", "after"]);
  });
});
