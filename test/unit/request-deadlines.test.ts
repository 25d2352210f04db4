import { EventEmitter } from "node:events";
import type { IncomingMessage, Server as HttpServer, ServerResponse } from "node:http";
import { beforeEach, describe, expect, it } from "vitest";
import { enforceRequestDeadlines, REQUEST_TIMEOUT_ANSWER, TIMED_OUT_LINGER_MS } from "../../src/http/request-deadlines.ts";
import { FakeClock } from "../helpers/fake-clock.ts";

const HEADER_TIMEOUT_MS = 1_000;
const READ_TIMEOUT_MS = 3_000;

/** What the deadlines use of a socket: 'close', end (with its flush callback) and destroy. */
class FakeSocket extends EventEmitter {
  written = "";
  destroyed = false;
  /** Whether end()'s callback runs: false models a client that stopped reading. */
  flushes = true;

  end(data: string, flushed: () => void): this {
    this.written += data;
    if (this.flushes) flushed();
    return this;
  }
  destroy(): this {
    if (this.destroyed) return this;
    this.destroyed = true;
    this.emit("close", false);
    return this;
  }
}

/** The parts of an IncomingMessage the deadlines read. */
const request = (socket: FakeSocket, complete: boolean): IncomingMessage => ({ socket, complete }) as unknown as IncomingMessage;
/** The part of a ServerResponse the deadlines read. */
const response = (headersSent: boolean): ServerResponse => ({ headersSent }) as unknown as ServerResponse;

let clock: FakeClock;
let server: EventEmitter;

beforeEach(() => {
  clock = new FakeClock();
  server = new EventEmitter();
});

/** A server with the deadlines, and one connection arriving on the event its HTTP parser reads. */
function arrive(tls = false): FakeSocket {
  enforceRequestDeadlines(server as unknown as HttpServer, { headerTimeoutMs: HEADER_TIMEOUT_MS, readTimeoutMs: READ_TIMEOUT_MS, tls, setTimer: clock.setTimer });
  const socket = new FakeSocket();
  server.emit(tls ? "secureConnection" : "connection", socket);
  return socket;
}

describe("deadlines on a server that does not listen", () => {
  it("answers 408 and closes a connection whose head is not complete at header_timeout", () => {
    const socket = arrive();
    clock.advance(HEADER_TIMEOUT_MS - 1);
    expect(socket.destroyed).toBe(false);
    clock.advance(1);
    expect(socket.written).toBe(REQUEST_TIMEOUT_ANSWER);
    expect(socket.destroyed).toBe(true);
    expect(clock.pending).toBe(0);
  });

  it("destroys a timed-out socket whose client does not read the answer, shortly after", () => {
    const socket = arrive();
    socket.flushes = false;
    clock.advance(HEADER_TIMEOUT_MS);
    expect(socket.written).toBe(REQUEST_TIMEOUT_ANSWER);
    expect(socket.destroyed).toBe(false);
    clock.advance(TIMED_OUT_LINGER_MS);
    expect(socket.destroyed).toBe(true);
    expect(clock.pending).toBe(0);
  });

  it("over TLS watches the decrypted socket ('secureConnection'), not the raw one", () => {
    const socket = arrive(true);
    const raw = new FakeSocket();
    server.emit("connection", raw);
    clock.advance(HEADER_TIMEOUT_MS);
    expect(socket.written).toBe(REQUEST_TIMEOUT_ANSWER);
    expect(raw.destroyed).toBe(false);
  });

  it("a head in time is not cut at header_timeout; its body still incomplete at read_timeout is, with 408", () => {
    const socket = arrive();
    server.emit("request", request(socket, false), response(false));
    clock.advance(READ_TIMEOUT_MS - 1);
    expect(socket.destroyed).toBe(false);
    clock.advance(1);
    expect(socket.written).toBe(REQUEST_TIMEOUT_ANSWER);
    expect(socket.destroyed).toBe(true);
  });

  it("a request already being answered when its body times out is closed without a 408 in its response", () => {
    const socket = arrive();
    server.emit("request", request(socket, false), response(true));
    clock.advance(READ_TIMEOUT_MS);
    expect(socket.destroyed).toBe(true);
    expect(socket.written).toBe("");
  });

  it("a request complete at read_timeout is left alone (a long-polling GET waits for its answer)", () => {
    const socket = arrive();
    const incoming = request(socket, false);
    server.emit("request", incoming, response(false));
    (incoming as { complete: boolean }).complete = true;
    clock.advance(READ_TIMEOUT_MS * 3);
    expect(socket.destroyed).toBe(false);
    expect(clock.pending).toBe(0);
  });

  it("an upgraded connection leaves HTTP and its deadlines", () => {
    const socket = arrive();
    server.emit("upgrade", request(socket, true));
    expect(clock.pending).toBe(0);
    // Nothing of the deadlines stays on the socket for the life of the connection.
    expect(socket.listenerCount("close")).toBe(0);
    clock.advance(READ_TIMEOUT_MS * 3);
    expect(socket.destroyed).toBe(false);
  });

  it("a connection that closes leaves no timer behind", () => {
    const socket = arrive();
    socket.destroy();
    expect(clock.pending).toBe(0);
  });
});
