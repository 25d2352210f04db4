import { EventEmitter } from "node:events";
import type { Socket } from "node:net";
import { pino } from "pino";
import { beforeEach, describe, expect, it } from "vitest";
import { MachineQuota } from "../../src/cluster/machine-quota.ts";
import { exposedCollect } from "../../src/process/burst-reclaim.ts";
import { REFUSED_LINGER_MS, StickyRouter, type Placement, type RouteTarget, type StickyRouterOptions } from "../../src/cluster/sticky-router.ts";
import { clientAddressResolver, forwardedForOfHead } from "../../src/trust/client-address.ts";
import { FakeClock } from "../helpers/fake-clock.ts";

const HEADER_TIMEOUT_MS = 1_000;
const READ_TIMEOUT_MS = 3_000;
const MAX_REQUEST_BYTES = 64 * 1024;

/** What the router uses of a net.Socket: events, end/destroy, and the hand-off's pause/read. */
class FakeSocket extends EventEmitter {
  remoteAddress = "127.0.0.1";
  written = "";
  ended = false;
  destroyed = false;
  paused = false;

  /** The client sends bytes (Node delivers them as 'data' while the router listens). */
  send(text: string | Buffer): void {
    this.emit("data", typeof text === "string" ? Buffer.from(text, "latin1") : text);
  }
  end(data?: string): this {
    if (data !== undefined) this.written += data;
    this.ended = true;
    return this;
  }
  destroy(): this {
    if (this.destroyed) return this;
    this.destroyed = true;
    this.emit("close", false);
    return this;
  }
  pause(): this {
    this.paused = true;
    return this;
  }
  /** Bytes Node read into the paused stream (a client writing before its answer), for read() to give. */
  readonly unread: Buffer[] = [];
  read(): Buffer | null {
    return this.unread.shift() ?? null;
  }
  /** The libuv handle: how often its reading was stopped (the router does it to a connection that moves). */
  readonly _handle = {
    readStops: 0,
    readStop(): number {
      this.readStops++;
      return 0;
    },
  };
  get status(): string | undefined {
    return /^HTTP\/1\.1 (\d{3})/.exec(this.written)?.[1];
  }
}

interface HandOff {
  worker: number;
  data: string;
  longLived: boolean;
}

let clock: FakeClock;
let handOffs: HandOff[];
let loads: Map<number, number>;

function router(overrides: Partial<StickyRouterOptions> = {}): StickyRouter {
  const targets = (): ReadonlyMap<number, RouteTarget> =>
    new Map(
      [...loads].map(([index, load]): [number, RouteTarget] => [
        index,
        { index, load, handOff: (_socket, data, longLived) => handOffs.push({ worker: index, data: data.toString("latin1"), longLived }) },
      ]),
    );
  return new StickyRouter({
    tls: false,
    maxRequestBytes: MAX_REQUEST_BYTES,
    headerTimeoutMs: HEADER_TIMEOUT_MS,
    readTimeoutMs: READ_TIMEOUT_MS,
    slots: 4,
    targets,
    logger: pino({ level: "silent" }),
    setTimer: clock.setTimer,
    ...overrides,
  });
}

function accept(target = router()): FakeSocket {
  const socket = new FakeSocket();
  target.accept(socket as unknown as Socket);
  return socket;
}

beforeEach(() => {
  clock = new FakeClock();
  handOffs = [];
  // Worker 3 is the least loaded, so a connection without a session goes there.
  loads = new Map([
    [0, 5],
    [1, 5],
    [2, 5],
    [3, 1],
  ]);
});

describe("deadlines", () => {
  it("cuts a head dribbled byte by byte at header_timeout, though bytes keep coming", () => {
    const socket = accept();
    const head = `GET /ws HTTP/1.1\r\nHost: x\r\n${"X-Pad: y\r\n".repeat(200)}`;
    let sent = 0;
    // One byte every 10 ms: each arrives well within any idle timeout.
    while (!socket.ended && sent < head.length) {
      socket.send(head.charAt(sent++));
      clock.advance(10);
    }
    expect(socket.status).toBe("408");
    expect(socket.written).toContain("\r\nConnection: close\r\n");
    expect(clock.now).toBe(HEADER_TIMEOUT_MS);
    expect(sent).toBe(HEADER_TIMEOUT_MS / 10);
    expect(handOffs).toEqual([]);
  });

  it("destroys a refused socket shortly after the answer, though the client neither reads nor closes", () => {
    const socket = accept();
    socket.send("GET /ws HTTP/1.1\r\n");
    clock.advance(HEADER_TIMEOUT_MS);
    expect(socket.status).toBe("408");
    expect(socket.destroyed).toBe(false);
    socket.send("X-Late: 1\r\n"); // ignored: the router no longer reads it
    clock.advance(REFUSED_LINGER_MS);
    expect(socket.destroyed).toBe(true);
    expect(clock.pending).toBe(0);
    expect(handOffs).toEqual([]);
  });

  it("cuts a complete head whose body dribbles at read_timeout", () => {
    const socket = accept();
    socket.send("POST /socket.io/?EIO=4&transport=polling&sid=w1-abc HTTP/1.1\r\nContent-Length: 1000\r\n\r\n");
    let sent = 0;
    while (!socket.ended && sent < 1000) {
      socket.send("x");
      sent++;
      clock.advance(10);
    }
    expect(socket.status).toBe("408");
    expect(clock.now).toBe(READ_TIMEOUT_MS);
    expect(handOffs).toEqual([]);
  });

  it("a head completed in time is not cut at header_timeout while its body is still within read_timeout", () => {
    const socket = accept();
    socket.send("POST /x HTTP/1.1\r\nContent-Length: 4\r\n\r\nab");
    clock.advance(HEADER_TIMEOUT_MS + 500);
    expect(socket.ended).toBe(false);
    socket.send("cd");
    expect(handOffs).toEqual([{ worker: 3, data: "POST /x HTTP/1.1\r\nContent-Length: 4\r\n\r\nabcd", longLived: false }]);
  });

  it("hands a complete request off and cancels its deadlines", () => {
    const socket = accept();
    socket.send("GET /health HTT");
    clock.advance(HEADER_TIMEOUT_MS - 1);
    socket.send("P/1.1\r\nHost: x\r\n\r\n");
    expect(handOffs).toEqual([{ worker: 3, data: "GET /health HTTP/1.1\r\nHost: x\r\n\r\n", longLived: false }]);
    expect(socket.paused).toBe(true);
    expect(clock.pending).toBe(0);
    clock.advance(READ_TIMEOUT_MS * 2);
    expect(socket.written).toBe("");
    expect(socket.destroyed).toBe(false);
  });

  it("a connection that closes before its request is done leaves no timer behind", () => {
    const socket = accept();
    socket.send("GET /ws HTTP/1.1\r\n");
    socket.destroy();
    expect(clock.pending).toBe(0);
    expect(handOffs).toEqual([]);
  });

  it("header_timeout equal to read_timeout answers 408 once", () => {
    const socket = accept(router({ headerTimeoutMs: READ_TIMEOUT_MS }));
    socket.send("GET /ws HTTP/1.1\r\n");
    clock.advance(READ_TIMEOUT_MS);
    expect(socket.written.match(/HTTP\/1\.1/g)).toHaveLength(1);
    expect(socket.status).toBe("408");
  });

  it("TLS connections are routed at once, unread, with no deadline", () => {
    const socket = accept(router({ tls: true }));
    expect(handOffs).toHaveLength(1);
    expect(handOffs[0]).toMatchObject({ data: "", longLived: true });
    expect(clock.pending).toBe(0);
    expect(socket.written).toBe("");
  });
});

describe("routing", () => {
  it.each([0, 1, 2, 3])("a polling request of session w%i-… goes to worker %i", (worker) => {
    accept().send(`GET /socket.io/?EIO=4&transport=polling&sid=w${worker}-AbC_123 HTTP/1.1\r\nHost: x\r\n\r\n`);
    expect(handOffs).toEqual([expect.objectContaining({ worker, longLived: false })]);
  });

  it("the upgrade of an existing session goes to its worker and is not counted as new load", () => {
    accept().send("GET /socket.io/?EIO=4&transport=websocket&sid=w2-xyz HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
    expect(handOffs).toEqual([expect.objectContaining({ worker: 2, longLived: false })]);
  });

  it("a session whose worker is not ready goes to the least loaded one", () => {
    loads.delete(1);
    accept().send("GET /socket.io/?EIO=4&transport=polling&sid=w1-gone HTTP/1.1\r\n\r\n");
    expect(handOffs).toEqual([expect.objectContaining({ worker: 3 })]);
  });

  it("a sid outside the request line does not route", () => {
    accept().send("GET /health HTTP/1.1\r\nReferer: /x?sid=w0-abc\r\n\r\n");
    expect(handOffs).toEqual([expect.objectContaining({ worker: 3 })]);
  });

  it.each([
    ["a raw WebSocket upgrade", "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"],
    ["a new polling session", "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n"],
    ["a Socket.IO WebSocket without a session", "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nupgrade: WebSocket\r\n\r\n"],
  ])("%s is long-lived and goes to the least loaded worker", (_name, request) => {
    accept().send(request);
    expect(handOffs).toEqual([{ worker: 3, data: request, longLived: true }]);
  });

  it("a plain request is not long-lived", () => {
    accept().send("GET /stats HTTP/1.1\r\n\r\n");
    expect(handOffs).toEqual([expect.objectContaining({ longLived: false })]);
  });

  it("ties between the least loaded workers are spread", () => {
    loads = new Map([
      [0, 2],
      [1, 2],
    ]);
    const seen = new Set<number>();
    for (let i = 0; i < 64 && seen.size < 2; i++) {
      accept().send("GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n");
      seen.add((handOffs[handOffs.length - 1] as HandOff).worker);
    }
    expect([...seen].sort()).toEqual([0, 1]);
  });

  it("with no worker ready the answer is 503", () => {
    loads.clear();
    const socket = accept();
    socket.send("GET /health HTTP/1.1\r\n\r\n");
    expect(socket.status).toBe("503");
    clock.advance(REFUSED_LINGER_MS);
    expect(socket.destroyed).toBe(true);
  });

  it("a head split over many reads is routed whole, with the bytes after it", () => {
    const socket = accept();
    const request = "POST /socket.io/?EIO=4&transport=polling&sid=w0-s HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello";
    for (const part of request.match(/.{1,7}/gs) ?? []) socket.send(part);
    expect(handOffs).toEqual([{ worker: 0, data: request, longLived: false }]);
  });
});

describe("hand-over", () => {
  const request = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";

  /** A router placing every new connection on `to` once `answer` is called, as a worker's acceptor waits for the primary. */
  function placing(to: number): { router: StickyRouter; answer: () => Promise<void> } {
    let answer: () => void = () => undefined;
    const placed = new Promise<void>((resolve) => (answer = resolve));
    const targets = (): ReadonlyMap<number, RouteTarget> =>
      new Map(
        [0, 1].map((index): [number, RouteTarget] => [
          index,
          { index, local: index === 0, load: 0, handOff: (_socket, data, longLived) => handOffs.push({ worker: index, data: data.toString("latin1"), longLived }) },
        ]),
      );
    const place = async (): Promise<Placement> => {
      await placed;
      return { index: to, quota: undefined, full: false };
    };
    return {
      router: router({ targets, place }),
      answer: async () => {
        answer();
        await new Promise((settled) => setImmediate(settled));
      },
    };
  }

  it("a connection that moves takes the bytes read while its placement was asked, and its handle stops reading", async () => {
    const { router: forwarding, answer } = placing(1);
    const socket = accept(forwarding);
    socket.send(request);
    expect(socket.paused).toBe(true);
    // The client writes on before it is answered: Node reads that into the paused stream.
    socket.unread.push(Buffer.from("early frame", "latin1"));
    await answer();
    expect(handOffs).toEqual([{ worker: 1, data: `${request}early frame`, longLived: true }]);
    expect(socket._handle.readStops).toBe(1);
  });

  it("a connection that stays is handed the request alone and keeps its reading: what came after waits in its stream, in order", async () => {
    const { router: staying, answer } = placing(0);
    const socket = accept(staying);
    socket.send(request);
    socket.unread.push(Buffer.from("early frame", "latin1"));
    await answer();
    expect(handOffs).toEqual([{ worker: 0, data: request, longLived: true }]);
    expect(socket._handle.readStops).toBe(0);
    expect(socket.paused).toBe(true);
    expect(socket.unread.map((chunk) => chunk.toString("latin1"))).toEqual(["early frame"]);
  });
});

describe("memory", () => {
  it("keeps none of a request's bytes once its connection is handed off: the socket's listeners do not hold them", async () => {
    // A full garbage collection on demand (the test's process was not started with --expose-gc).
    const collectGarbage = exposedCollect();
    expect(collectGarbage).toBeTypeOf("function");
    const socket = accept();
    let head: Buffer | undefined = Buffer.from("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n", "latin1");
    const bytes = new WeakRef(head);
    socket.send(head);
    head = undefined;
    expect(handOffs).toEqual([{ worker: 3, data: expect.stringContaining("GET /ws") as unknown, longLived: true }]);
    expect(socket.listenerCount("error")).toBe(1); // the one the connection keeps for its whole life
    // A WeakRef's target lives until the current task ends.
    await new Promise((resolve) => setImmediate(resolve));
    collectGarbage?.();
    expect(bytes.deref()).toBeUndefined();
  });
});

describe("refusals", () => {
  it("431 for a head over 16 KB, without waiting for a deadline", () => {
    const socket = accept();
    socket.send(`GET /ws HTTP/1.1\r\nX-Big: ${"a".repeat(16 * 1024)}`);
    expect(socket.status).toBe("431");
    expect(clock.now).toBe(0);
    clock.advance(REFUSED_LINGER_MS);
    expect(socket.destroyed).toBe(true);
    expect(clock.pending).toBe(0);
    expect(handOffs).toEqual([]);
  });

  it("411 for a chunked body", () => {
    const socket = accept();
    socket.send("POST /socket.io/?EIO=4&transport=polling&sid=w0-s HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
    expect(socket.status).toBe("411");
    expect(handOffs).toEqual([]);
  });

  it("413 for a request over max request bytes, from its content-length alone", () => {
    const socket = accept();
    socket.send(`POST /socket.io/?EIO=4&transport=polling&sid=w0-s HTTP/1.1\r\nContent-Length: ${MAX_REQUEST_BYTES}\r\n\r\n`);
    expect(socket.status).toBe("413");
    expect(handOffs).toEqual([]);
  });

  it("every answer closes the connection", () => {
    const socket = accept();
    socket.send("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
    expect(socket.written).toBe("HTTP/1.1 411 Length Required\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    expect(socket.ended).toBe(true);
  });
});

describe("per-address admission (MachineQuota)", () => {
  const upgrade = (forwardedFor?: string): string =>
    `GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n${forwardedFor === undefined ? "" : `X-Forwarded-For: ${forwardedFor}\r\n`}\r\n`;
  const limits = { maxConnectionsPerIp: 2, connectionRatePerIp: 100, connectionBurstPerIp: 100 };

  /**
   * A router placing as a worker's acceptor does (the client address from the socket and the head,
   * the verdict from the machine's quota), whose hand-offs record the address each was counted against.
   */
  function counting(quota: MachineQuota, trustedProxies: string[] = []): { router: StickyRouter; counted: (string | undefined)[] } {
    const counted: (string | undefined)[] = [];
    const clientAddress = clientAddressResolver(trustedProxies);
    const targets = (): ReadonlyMap<number, RouteTarget> => new Map([[0, { index: 0, load: 0, handOff: (_socket, _data, _longLived, address) => counted.push(address) }]]);
    const place = async (socket: Socket, head: string): Promise<Placement> => {
      const verdict = quota.admit(clientAddress(socket.remoteAddress, forwardedForOfHead(head)));
      return "refuse" in verdict ? verdict : { index: 0, quota: verdict.address, full: false };
    };
    return { router: router({ targets, place }), counted };
  }
  /** A request from `address`, once its placement is answered. */
  const from = async (target: StickyRouter, address: string, request: string): Promise<FakeSocket> => {
    const socket = new FakeSocket();
    socket.remoteAddress = address;
    target.accept(socket as unknown as Socket);
    socket.send(request);
    await new Promise((settled) => setImmediate(settled));
    return socket;
  };

  it("counts long-lived connections per address for the machine and refuses one over the cap with 429, unhanded", async () => {
    const quota = new MachineQuota(limits, () => clock.now);
    const { router: target, counted } = counting(quota);
    await from(target, "::ffff:10.0.0.1", upgrade());
    await from(target, "10.0.0.1", "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n");
    const refused = await from(target, "10.0.0.1", upgrade());
    expect(refused.status).toBe("429");
    // With the reason one process's gate gives, as its JSON body.
    expect(refused.written).toContain("\r\nContent-Type: application/json\r\n");
    expect(JSON.parse(refused.written.slice(refused.written.indexOf("\r\n\r\n") + 4))).toEqual({ code: 429, message: "too many connections from this address" });
    // A long-polling session's later requests, and other addresses, are not counted against it.
    await from(target, "10.0.0.1", "GET /socket.io/?EIO=4&transport=polling&sid=w0-abc HTTP/1.1\r\nHost: x\r\n\r\n");
    await from(target, "10.0.0.2", upgrade());
    expect(counted).toEqual(["10.0.0.1", "10.0.0.1", undefined, "10.0.0.2"]);
    for (const address of ["10.0.0.1", "10.0.0.1", "10.0.0.2"]) quota.handedOff(7, address);
    // A worker's report frees its connections; a report from a worker gone frees nothing twice.
    quota.released(7, ["10.0.0.1"]);
    expect((await from(target, "10.0.0.1", upgrade())).status).toBeUndefined();
    expect((await from(target, "10.0.0.1", upgrade())).status).toBe("429");
    quota.workerGone(7);
    quota.released(7, ["10.0.0.1"]);
    expect((await from(target, "10.0.0.1", upgrade())).status).toBeUndefined();
    expect((await from(target, "10.0.0.1", upgrade())).status).toBe("429");
  });

  it("reads the client address from a trusted proxy's X-Forwarded-For, and ignores an untrusted peer's", async () => {
    const quota = new MachineQuota({ ...limits, maxConnectionsPerIp: 1 }, () => clock.now);
    const { router: target, counted } = counting(quota, ["10.0.0.0/8"]);
    await from(target, "10.0.0.9", upgrade("198.51.100.1, 203.0.113.5"));
    expect((await from(target, "10.0.0.9", upgrade("203.0.113.5"))).status).toBe("429");
    await from(target, "10.0.0.9", upgrade("203.0.113.6"));
    await from(target, "192.0.2.1", upgrade("203.0.113.7"));
    expect((await from(target, "192.0.2.1", upgrade("203.0.113.8"))).status).toBe("429");
    expect(counted).toEqual(["203.0.113.5", "203.0.113.6", "192.0.2.1"]);
  });

  it("refuses past the rate, and lets the burst refill", async () => {
    const quota = new MachineQuota({ ...limits, maxConnectionsPerIp: 100, connectionRatePerIp: 1, connectionBurstPerIp: 2 }, () => clock.now);
    const { router: target } = counting(quota);
    expect([await from(target, "10.0.0.3", upgrade()), await from(target, "10.0.0.3", upgrade()), await from(target, "10.0.0.3", upgrade())].map((socket) => socket.status)).toEqual([undefined, undefined, "429"]);
    clock.now += 1_000;
    expect((await from(target, "10.0.0.3", upgrade())).status).toBeUndefined();
  });
});
