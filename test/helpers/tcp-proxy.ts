import { connect, createServer, type Server, type Socket } from "node:net";

/**
 * A TCP relay on 127.0.0.1 between clients and a server, for tests that cut a client's connection
 * the way a network does: `cut()` destroys both halves of every relayed connection (neither end
 * gets a WebSocket close frame), `hold()` keeps new connections waiting unanswered until
 * `release()`, and `retarget()` sends the next connections to another port (another node).
 */
export interface TcpProxy {
  readonly port: number;
  /** `http://127.0.0.1:<port>`. */
  readonly http: string;
  /** Connections relayed so far. */
  readonly accepted: number;
  cut(): void;
  hold(): void;
  release(): void;
  retarget(port: number): void;
  close(): Promise<void>;
}

export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  let target = targetPort;
  let holding = false;
  let accepted = 0;
  const open = new Set<Socket>();
  const waiting: Socket[] = [];

  const relay = (client: Socket): void => {
    if (client.destroyed) return;
    accepted++;
    const upstream = connect(target, "127.0.0.1");
    open.add(client);
    open.add(upstream);
    const end = (): void => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    client.on("error", end).on("close", end);
    upstream.on("error", end).on("close", end);
    client.pipe(upstream);
    upstream.pipe(client);
  };

  const server: Server = createServer((client) => {
    client.on("error", () => client.destroy());
    if (holding) waiting.push(client);
    else relay(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const address = server.address();
  if (typeof address !== "object" || address === null) throw new Error("proxy has no port");

  return {
    port: address.port,
    http: `http://127.0.0.1:${address.port}`,
    get accepted() {
      return accepted;
    },
    cut() {
      for (const socket of open) socket.destroy();
      open.clear();
    },
    hold() {
      holding = true;
    },
    release() {
      holding = false;
      for (const client of waiting.splice(0)) relay(client);
    },
    retarget(port) {
      target = port;
    },
    async close() {
      for (const socket of [...open, ...waiting]) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
