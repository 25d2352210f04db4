import WebSocket from "ws";
import type { IncomingHttpHeaders } from "node:http";
import { startNodes } from "./redis-nodes.ts";
import { startRedisServer } from "./redis-server.ts";
import { startServer, type ServerProcess } from "./server-process.ts";
import { workerOf } from "./cluster.ts";

/**
 * A client of a dialect endpoint as its original client would be: a plain WebSocket exchanging
 * JSON text frames. It records every frame it receives, in order.
 */
export class DialectClient {
  /** Every JSON message received so far, in order. */
  readonly received: Record<string, unknown>[] = [];
  /** Resolves with the close code once the server or the client closed the socket. */
  readonly closed: Promise<number>;
  private readonly waiters = new Set<() => void>();

  private constructor(readonly socket: WebSocket) {
    socket.on("message", (data, isBinary) => {
      if (isBinary) return;
      this.received.push(JSON.parse(data.toString()) as Record<string, unknown>);
      for (const wake of [...this.waiters]) wake();
    });
    this.closed = new Promise((resolve) => socket.once("close", (code) => resolve(code)));
  }

  /** Opens `url` (e.g. `ws://127.0.0.1:PORT/pigeon?peerId=...`); rejects with the HTTP status if the upgrade is refused. */
  static open(url: string, options: { headers?: Record<string, string> } = {}): Promise<DialectClient> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url, { headers: options.headers });
      const client = new DialectClient(socket);
      socket.once("open", () => resolve(client));
      socket.once("unexpected-response", (_request, response) => reject(new RefusedUpgrade(response.statusCode ?? 0, response.headers)));
      socket.once("error", reject);
    });
  }

  /** Sends one frame: an object is sent as JSON, a string as is. */
  send(message: Record<string, unknown> | string): void {
    this.socket.send(typeof message === "string" ? message : JSON.stringify(message));
  }

  /**
   * The first message received after `fromIndex` (default: from the start) that satisfies `match`;
   * rejects after `timeoutMs`, listing what was received.
   */
  next(match: (message: Record<string, unknown>) => boolean, timeoutMs = 5_000, fromIndex = 0): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const look = (): boolean => {
        for (let i = fromIndex; i < this.received.length; i++) {
          const message = this.received[i] as Record<string, unknown>;
          if (match(message)) {
            resolve(message);
            return true;
          }
        }
        return false;
      };
      if (look()) return;
      const timer = setTimeout(() => {
        this.waiters.delete(wake);
        reject(new Error(`no matching message within ${timeoutMs} ms; received: ${JSON.stringify(this.received)}`));
      }, timeoutMs);
      const wake = (): void => {
        if (!look()) return;
        clearTimeout(timer);
        this.waiters.delete(wake);
      };
      this.waiters.add(wake);
    });
  }

  /** The first message of `type` (received from `fromIndex` on). */
  nextOfType(type: string, timeoutMs?: number, fromIndex?: number): Promise<Record<string, unknown>> {
    return this.next((message) => message["type"] === type, timeoutMs, fromIndex);
  }

  /** Messages of `type` received so far. */
  ofType(type: string): Record<string, unknown>[] {
    return this.received.filter((message) => message["type"] === type);
  }

  close(): void {
    this.socket.close();
  }
}

/** An upgrade the server answered with an HTTP status instead of 101. */
export class RefusedUpgrade extends Error {
  constructor(
    readonly status: number,
    readonly headers: IncomingHttpHeaders,
  ) {
    super(`upgrade refused with HTTP ${status}`);
  }
}

/** A running deployment for dialect tests, and where to connect on each side of it. */
export interface DialectDeployment {
  /** Two entry points: the same process twice (one process, or the primary of a cluster), or two Redis nodes. */
  readonly sides: readonly [ServerProcess, ServerProcess];
  /** True when the two sides' peers run in different processes only if placed so (a cluster: see placeApart). */
  readonly clustered: boolean;
  stop(): Promise<void>;
}

/** The topologies every dialect is tested in: one process, two workers, two nodes on a private Redis. */
export const DIALECT_TOPOLOGIES: readonly { name: string; start(config?: Record<string, unknown>): Promise<DialectDeployment> }[] = [
  {
    name: "one process",
    async start(config) {
      const server = await startServer({ config });
      return { sides: [server, server], clustered: false, stop: async () => void (await server.stop()) };
    },
  },
  {
    name: "two workers",
    async start(config) {
      const server = await startServer({ config, env: { PEER_WORKERS: "2" } });
      return { sides: [server, server], clustered: true, stop: async () => void (await server.stop()) };
    },
  },
  {
    name: "two Redis nodes",
    async start(config) {
      const redis = await startRedisServer();
      const nodes = await startNodes(redis, [{ config }, { config }]);
      return {
        sides: [nodes[0] as ServerProcess, nodes[1] as ServerProcess],
        clustered: false,
        stop: async () => {
          await Promise.all(nodes.map((node) => node.stop()));
          await redis.stop();
        },
      };
    },
  },
];

/**
 * In a cluster, connects (with `open`) until the new client's identity is held by another worker
 * than `other`'s; clients that landed on the same worker are closed. Elsewhere, opens once.
 * `identity` is the fingerprint the server registers the client under (e.g. `pigeon:<peerId>`).
 */
export async function placeApart(
  deployment: DialectDeployment,
  other: string,
  open: () => Promise<{ client: DialectClient; identity: string }>,
): Promise<DialectClient> {
  const server = deployment.sides[1];
  for (let attempt = 0; attempt < 20; attempt++) {
    const { client, identity } = await open();
    if (!deployment.clustered) return client;
    const [mine, theirs] = await Promise.all([workerOfEventually(server, identity), workerOfEventually(server, other)]);
    if (mine !== theirs) return client;
    client.close();
    await client.closed;
  }
  throw new Error("could not place a client on another worker in 20 attempts");
}

async function workerOfEventually(server: ServerProcess, identity: string): Promise<string | undefined> {
  for (let i = 0; i < 100; i++) {
    const worker = await workerOf(server, identity);
    if (worker !== undefined) return worker;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return undefined;
}
