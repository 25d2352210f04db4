import { describe, expect, it } from "vitest";
import { placeConnection, type PlacementCandidate } from "../../src/cluster/placement.ts";

const worker = (name: string, load: number, ready = true): PlacementCandidate & { name: string } => ({ name, load, ready });

describe("placing a new connection on a worker", () => {
  it("keeps it on the worker that accepted it while loads are equal, and counts the machine's load", () => {
    const workers = [worker("a", 3), worker("b", 3), worker("c", 3)];
    expect(placeConnection(workers[1]!, workers)).toEqual({ to: workers[1], machineLoad: 9 });
  });

  it("moves it to the least loaded worker when the accepting one holds any more while loads are small", () => {
    const workers = [worker("a", 1), worker("b", 0)];
    expect(placeConnection(workers[0]!, workers).to.name).toBe("b");
    // Consecutive connections of an idle machine end up on different workers.
    const idle = [worker("a", 0), worker("b", 0)];
    expect(placeConnection(idle[0]!, idle).to.name).toBe("a");
    const spread = [worker("a", 91), worker("b", 92), worker("c", 90)];
    expect(placeConnection(spread[0]!, spread).to.name).toBe("c");
  });

  it("lets the accepting worker go a tenth of the average load over the least loaded, no further", () => {
    // Average 1,000: a slack of 100 connections.
    const within = [worker("a", 1_050), worker("b", 1_000), worker("c", 950)];
    expect(placeConnection(within[0]!, within).to.name).toBe("a");
    const over = [worker("a", 1_052), worker("b", 1_000), worker("c", 950)];
    // Average 1,000.7: 1,052 is over 950 + 100.
    expect(placeConnection(over[0]!, over).to.name).toBe("c");
  });

  it("moves it off a worker that is not ready, and leaves workers that are not ready out of the count", () => {
    const workers = [worker("a", 0, false), worker("b", 5), worker("c", 4)];
    expect(placeConnection(workers[0]!, workers)).toEqual({ to: workers[2], machineLoad: 9 });
    expect(placeConnection(workers[1]!, [worker("x", 0, false), workers[1]!]).to).toBe(workers[1]);
  });
});
