import { describe, expect, it } from "vitest";
import { coalescing } from "../../src/backends/cluster/channel.ts";

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe("coalescing", () => {
  it("flushes what one turn of the event loop sent as one call, in order, and nothing before that turn ends", async () => {
    const flushed: number[][] = [];
    const send = coalescing<number>((messages) => flushed.push(messages));
    send(1);
    send(2);
    await Promise.resolve();
    send(3); // a promise continuation of the same turn joins the same flush
    expect(flushed).toEqual([]);
    await nextTurn();
    expect(flushed).toEqual([[1, 2, 3]]);
    send(4);
    await nextTurn();
    expect(flushed).toEqual([[1, 2, 3], [4]]);
  });

  it("a message sent while flushing goes out in the next flush, not lost", async () => {
    const flushed: string[][] = [];
    const send = coalescing<string>((messages) => {
      flushed.push(messages);
      if (messages.includes("first")) send("echo");
    });
    send("first");
    await nextTurn();
    await nextTurn();
    expect(flushed).toEqual([["first"], ["echo"]]);
  });
});
