import { createRequire } from "node:module";
import { Socket } from "node:net";
import { Duplex, Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import {
  assertLibraryInternals,
  installedCopies,
  LibraryInternalsError,
  libraryTargets,
  pinnedVersions,
  quietRepeatedReceiverEnds,
  quietRepeatedSocketEnds,
  stopReadingAtHandle,
  VERIFIED_VERSIONS,
  type CheckedPackage,
  type LibraryCheckInputs,
} from "../../src/internals/library-internals.ts";

/** Runs the check and returns its error (undefined when it passes). */
function failure(inputs: Partial<LibraryCheckInputs>): LibraryInternalsError | undefined {
  try {
    assertLibraryInternals(inputs);
    return undefined;
  } catch (error) {
    if (error instanceof LibraryInternalsError) return error;
    throw error;
  }
}

describe("assertLibraryInternals", () => {
  it("passes on the installed packages", () => {
    expect(() => assertLibraryInternals()).not.toThrow();
  });

  it("reads the pins from package.json and the versions from each installed copy", () => {
    const pins = pinnedVersions();
    for (const name of Object.keys(VERIFIED_VERSIONS) as CheckedPackage[]) {
      expect(pins[name]).toBe(VERIFIED_VERSIONS[name]);
      const copies = installedCopies(name);
      expect(copies.length).toBeGreaterThan(0);
      for (const copy of copies) expect(copy.version).toBe(VERIFIED_VERSIONS[name]);
    }
  });

  it("fails naming the package, the expected and the installed version when a pin differs", () => {
    const error = failure({ expected: { ...pinnedVersions(), "socket.io-adapter": "2.5.7" } });
    expect(error).toBeInstanceOf(LibraryInternalsError);
    expect(new Set(error?.problems.map((problem) => problem.package))).toEqual(new Set(["socket.io-adapter"]));
    expect(error?.message).toContain("socket.io-adapter");
    expect(error?.message).toContain("2.5.7");
    expect(error?.message).toContain("2.5.8");
  });

  it("fails when an installed copy is another version", () => {
    const installed = (name: CheckedPackage) =>
      name === "engine.io" ? [{ version: "6.6.13", path: "/somewhere/node_modules/engine.io" }] : installedCopies(name);
    const error = failure({ installed });
    expect(error?.problems.map((problem) => problem.package)).toEqual(["engine.io"]);
    expect(error?.message).toContain("6.6.13");
    expect(error?.message).toContain("6.6.12");
  });

  it("fails when package.json pins a range", () => {
    const error = failure({ expected: { ...pinnedVersions(), "socket.io": "^4.8.3" } });
    expect(error?.problems.map((problem) => problem.package)).toEqual(["socket.io"]);
  });

  it("fails naming the package and the member when a prototype lacks one", () => {
    class AdapterWithoutApply {
      _encode(): void {}
      broadcast(): void {}
    }
    const error = failure({ targets: { ...libraryTargets(), adapter: AdapterWithoutApply } });
    expect(error?.problems.every((problem) => problem.package === "socket.io-adapter")).toBe(true);
    expect(error?.problems.map((problem) => problem.member)).toContain("Adapter.prototype.apply");
    expect(error?.message).toContain("socket.io-adapter");
    expect(error?.message).toContain("Adapter.prototype.apply");
  });

  it("fails when socket.io's Client cannot be reached or lacks writeToEngine", () => {
    const error = failure({ targets: { ...libraryTargets(), client: undefined } });
    expect(error?.problems).toEqual([expect.objectContaining({ package: "socket.io", member: "Client.prototype.writeToEngine (dist/client.js)" })]);
  });

  it("fails when engine.io's WebSocket transport no longer keeps its socket", () => {
    class Transport {
      constructor(readonly ws: unknown) {}
    }
    const error = failure({ targets: { ...libraryTargets(), engineWebSocket: Transport } });
    expect(error?.problems.map((problem) => problem.package)).toEqual(["engine.io"]);
  });

  it("fails when ws's Receiver defines an end of its own", () => {
    class Receiver extends Writable {
      override end(): this {
        return this;
      }
    }
    const error = failure({ targets: { ...libraryTargets(), wsReceiver: Receiver } });
    expect(error?.problems).toEqual([expect.objectContaining({ package: "ws", member: "Receiver.prototype.end inherited from Writable" })]);
  });

  it("reports every problem at once", () => {
    const error = failure({
      expected: { ...pinnedVersions(), "socket.io-parser": "4.2.6" },
      targets: { ...libraryTargets(), clusterAdapterSource: "" },
    });
    expect(new Set(error?.problems.map((problem) => problem.package))).toEqual(new Set(["socket.io-parser", "@socket.io/cluster-adapter"]));
  });
});

describe("stopReadingAtHandle", () => {
  it("is true for a socket without a handle and false for a handle without readStop", () => {
    expect(stopReadingAtHandle(new Socket())).toBe(true);
    const stripped = Object.assign(new Socket(), { _handle: {} });
    expect(stopReadingAtHandle(stripped)).toBe(false);
  });
});

/**
 * How many times the stream end() that `owner` holds runs during `run`: a stand-in counts the calls
 * (the guards call it by name, so they reach the stand-in too) and hands them on.
 */
function endsDuring(owner: { end: Writable["end"] }, run: () => void): number {
  const end = owner.end;
  let calls = 0;
  owner.end = function (this: Writable, ...args: unknown[]) {
    calls++;
    return (end as (...given: unknown[]) => Writable).apply(this, args);
  } as Writable["end"];
  try {
    run();
  } finally {
    owner.end = end;
  }
  return calls;
}

/** Resolves once `stream` has ended and finished. */
async function finished<S extends Writable>(stream: S): Promise<S> {
  stream.end();
  await new Promise((resolve) => stream.once("finish", resolve));
  return stream;
}

describe("quietRepeatedReceiverEnds", () => {
  const { Receiver } = createRequire(import.meta.url)("ws") as { Receiver: new (options: object) => Writable };

  it("lets end() on a finished receiver return at once, without Writable's end (which builds an error there), and passes on every other call", async () => {
    quietRepeatedReceiverEnds();
    quietRepeatedReceiverEnds();
    // As a receiver is once a connection's close frame arrived.
    const receiver = await finished(new Receiver({}));
    let returned: unknown;
    expect(endsDuring(Writable.prototype, () => void (returned = receiver.end()))).toBe(0);
    expect(returned).toBe(receiver);
    const fresh = new Receiver({});
    expect(endsDuring(Writable.prototype, () => void fresh.end())).toBe(1);
    // With a callback it still reports that the stream had finished, as Writable does.
    const reported = await new Promise<unknown>((resolve) => receiver.end(resolve));
    expect(reported).toMatchObject({ code: "ERR_STREAM_ALREADY_FINISHED" });
  });
});

describe("quietRepeatedSocketEnds", () => {
  const duplex = (): Duplex => new Duplex({ read: () => undefined, write: (_chunk, _encoding, done) => done() });

  it("lets end() on that finished socket return at once, and passes on every other call", async () => {
    const socket = duplex();
    quietRepeatedSocketEnds(socket);
    await finished(socket);
    const other = await finished(duplex());
    expect(endsDuring(Duplex.prototype, () => expect(socket.end()).toBe(socket))).toBe(0);
    expect(endsDuring(Duplex.prototype, () => void other.end())).toBe(1);
    expect(endsDuring(Duplex.prototype, () => void socket.end(() => undefined))).toBe(1);
  });
});
