import { randomUUID } from "node:crypto";
import { Agent } from "node:https";
import { io as ioClient, type ManagerOptions, type SocketOptions } from "socket.io-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { WorkerView } from "../helpers/cluster.ts";
import { closeAll, connectWs, type Envelope, type TestPeer } from "../helpers/peers.ts";
import { getAdminJson, startServer, type ServerProcess } from "../helpers/server-process.ts";
import { httpsJson, makeCertificate, type Certificate } from "../helpers/tls.ts";
import { waitFor } from "../helpers/wait.ts";

/**
 * Cluster mode (2 workers) over TLS. The primary cannot read encrypted requests, so it routes each
 * connection by its client address and the worker terminates TLS; every request of one client
 * (long-polling included) must land on one worker. Clients here connect from several loopback
 * addresses (127.0.0.x) so that both workers get some.
 */

let cert: Certificate;
let ca: string;

/** Client source addresses to try: the whole 127/8 block is loopback on Linux. */
const ADDRESSES = Array.from({ length: 24 }, (_, i) => `127.0.0.${i + 1}`);

/** A Socket.IO peer, polling first, from a given local address (both transports bind to it). */
class SioTlsPeer {
  readonly received: Envelope[] = [];
  readonly socket;
  fingerprint = "";
  alias = "";

  constructor(url: string, localAddress: string) {
    // `agent` carries the source address for the long-polling requests, `localAddress` for the
    // WebSocket; the client's typings know neither as used here.
    const options: Partial<ManagerOptions & SocketOptions> & { localAddress: string } = {
      transports: ["polling", "websocket"],
      reconnection: false,
      forceNew: true,
      ca,
      agent: new Agent({ ca, localAddress }) as unknown as boolean,
      localAddress,
    };
    this.socket = ioClient(url, options);
    this.socket.onAny((event: string, body: Record<string, unknown> | undefined) => this.received.push({ type: event, ...(body ?? {}) }));
  }

  /** Resolves once connected and upgraded from polling to WebSocket, with the transport upgraded to. */
  async connected(): Promise<string> {
    const upgraded = new Promise<string>((resolve) => this.socket.io.engine.once("upgrade", (transport: { name: string }) => resolve(transport.name)));
    await new Promise<void>((resolve, reject) => {
      this.socket.once("connect", () => resolve());
      this.socket.once("connect_error", reject);
    });
    return upgraded;
  }

  request(type: string, fields: Record<string, unknown> = {}): Promise<Envelope> {
    return this.socket.timeout(5_000).emitWithAck(type, fields) as Promise<Envelope>;
  }

  async register(): Promise<Envelope> {
    const reply = await this.request("register", { payload: { public_key: `key-${randomUUID()}` } });
    this.fingerprint = String(reply.payload?.["fingerprint"]);
    this.alias = String(reply.payload?.["alias"]);
    return reply;
  }

  /** The next event of that type (buffered or future). */
  async next(type: string, timeoutMs = 5_000): Promise<Envelope> {
    const index = await waitFor(
      () => this.received.findIndex((message) => message.type === type),
      (found) => found >= 0,
      { timeoutMs, intervalMs: 20, what: `a ${type} event` },
    );
    return this.received.splice(index, 1)[0] as Envelope;
  }

  close(): void {
    this.socket.disconnect();
  }
}

describe("cluster with TLS (2 workers)", () => {
  let server: ServerProcess;
  let https: string;
  let wss: string;
  const openWs: TestPeer[] = [];
  const openSio: SioTlsPeer[] = [];

  beforeAll(async () => {
    cert = makeCertificate();
    ca = cert.ca;
    server = await startServer({ config: { tls_cert: cert.certPath, tls_key: cert.keyPath }, env: { PEER_WORKERS: "2" } });
    https = `https://127.0.0.1:${server.port}`;
    wss = `wss://127.0.0.1:${server.port}/ws`;
  });
  afterAll(async () => {
    closeAll(openWs);
    for (const peer of openSio) peer.close();
    await server?.stop();
    cert?.remove();
  });

  // The admin listener is plain HTTP on loopback, whatever the client port speaks.
  const workers = async (): Promise<WorkerView[]> => (await getAdminJson(server, "/admin/stats?detail=peers")).body["workers"] as WorkerView[];
  const workerOf = async (fingerprint: string): Promise<string | undefined> =>
    (await workers()).find((worker) => worker.peers.includes(fingerprint))?.node_id;

  async function wsPeerFrom(localAddress: string): Promise<TestPeer> {
    const peer = await connectWs(wss, { ca, localAddress });
    openWs.push(peer);
    expect((await peer.register()).type).toBe("registered");
    return peer;
  }

  async function sioPeerFrom(localAddress: string): Promise<SioTlsPeer> {
    const peer = new SioTlsPeer(https, localAddress);
    openSio.push(peer);
    expect(await peer.connected()).toBe("websocket");
    expect((await peer.register()).type).toBe("registered");
    return peer;
  }

  /** One client address per worker, found by registering a wss peer from successive addresses. */
  let addressOf: Map<string, string> | undefined;
  async function addressPerWorker(): Promise<Map<string, string>> {
    if (addressOf !== undefined) return addressOf;
    const found = new Map<string, string>();
    for (const address of ADDRESSES) {
      const probe = await wsPeerFrom(address);
      const node = await workerOf(probe.fingerprint);
      if (node !== undefined && !found.has(node)) found.set(node, address);
      probe.close();
      if (found.size === 2) break;
    }
    if (found.size !== 2) throw new Error(`client addresses reached only ${[...found.keys()].join(", ")}`);
    addressOf = found;
    return found;
  }

  it("https /health and /stats answer, and /stats lists both workers", async () => {
    const health = await httpsJson(`${https}/health`, ca);
    expect(health.status).toBe(200);
    expect(health.body).toMatchObject({ status: "ok" });
    const view = await workers();
    expect(view).toHaveLength(2);
    expect(new Set(view.map((w) => w.pid)).size).toBe(2);
  });

  it("wss /ws peers on different workers register, join and signal each other", async () => {
    const addresses = await addressPerWorker();
    const [a, b] = [await wsPeerFrom([...addresses.values()][0] as string), await wsPeerFrom([...addresses.values()][1] as string)];
    expect(await workerOf(a.fingerprint)).not.toBe(await workerOf(b.fingerprint));
    const namespace = `tls-ws-${randomUUID().slice(0, 8)}`;
    expect((await a.join(namespace)).type).toBe("peer_list");
    expect((await b.join(namespace)).payload?.["total"]).toBe(2);
    a.send("signal", { to: b.fingerprint, payload: { signal_type: "offer", sdp: "v=0" } });
    expect(await b.next("signal")).toMatchObject({ from: a.fingerprint, to: b.fingerprint, payload: { signal_type: "offer", sdp: "v=0" } });
    b.send("signal", { to: a.alias, payload: { signal_type: "answer", sdp: "v=1" } });
    expect(await a.next("signal")).toMatchObject({ from: b.fingerprint, to: a.fingerprint, payload: { signal_type: "answer" } });
  });

  it("a polling-first Socket.IO client connects, upgrades and registers, many times in a row, on both workers", async () => {
    const addresses = [...(await addressPerWorker()).entries()];
    const served = new Set<string>();
    for (let round = 0; round < 6; round++) {
      const [node, address] = addresses[round % addresses.length] as [string, string];
      const peer = await sioPeerFrom(address);
      // Every request of the session (polls, then the upgrade) reached the worker holding it.
      const pong = await peer.request("ping");
      expect(pong.type).toBe("pong");
      // The client's address decides its worker, whatever the transport.
      expect(await workerOf(peer.fingerprint)).toBe(node);
      served.add(node);
      peer.close();
    }
    expect(served.size).toBe(2);
  });

  it("a raw wss peer and a polling-first Socket.IO peer on another worker signal and relay to each other", async () => {
    const addresses = [...(await addressPerWorker()).values()];
    const namespace = `tls-mixed-${randomUUID().slice(0, 8)}`;
    const ws = await wsPeerFrom(addresses[0] as string);
    const sio = await sioPeerFrom(addresses[1] as string);
    expect(await workerOf(ws.fingerprint)).not.toBe(await workerOf(sio.fingerprint));
    expect((await ws.join(namespace)).type).toBe("peer_list");
    expect((await sio.request("join", { payload: { namespace } })).payload?.["total"]).toBe(2);
    expect(await ws.next("peer_joined")).toMatchObject({ from: sio.fingerprint, namespace });

    ws.send("signal", { to: sio.fingerprint, payload: { signal_type: "offer", sdp: "from-ws" } });
    expect(await sio.next("signal")).toMatchObject({ from: ws.fingerprint, to: sio.fingerprint, payload: { signal_type: "offer", sdp: "from-ws" } });
    expect((await sio.request("signal", { to: ws.alias, payload: { signal_type: "answer", sdp: "from-sio" } })).type).toBe("ok");
    expect(await ws.next("signal")).toMatchObject({ from: sio.fingerprint, to: ws.fingerprint, payload: { signal_type: "answer", sdp: "from-sio" } });
    expect((await sio.request("relay", { to: ws.fingerprint, payload: { move: [1, 2] } })).type).toBe("ok");
    expect(await ws.next("relay")).toMatchObject({ from: sio.fingerprint, payload: { move: [1, 2] } });
  });
});
