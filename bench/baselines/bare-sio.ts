import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Server, type Socket } from "socket.io";
import { RelayState, aliasOf, announce, listenArgs, type RelayPeer } from "./relay-state.ts";
import { connectShardedAdapter } from "./sharded-adapter.ts";

/**
 * Baseline: the smallest Socket.IO relay with one room per fingerprint. Events and envelopes are
 * the server's (event = type, one envelope argument, direct replies to an ack when given), for
 * register, join, signal and broadcast only. Targeted messages go through `io.to(fingerprint)`,
 * the idiomatic Socket.IO way.
 *
 * With `--redis`, one node of a relay spread over several through Socket.IO's sharded Redis
 * adapter (`subscriptionMode: "dynamic"`): the same rooms and emits, across nodes. No state is
 * shared between nodes: a signal goes to the room its `to` names, unchecked.
 */
interface SioPeer extends RelayPeer {
  readonly socket: Socket;
}

type Ack = ((reply: Record<string, unknown>) => void) | undefined;
type Envelope = { to?: unknown; payload?: Record<string, unknown> } | undefined;

const { host, port, redis } = listenArgs();
const sharded = redis === undefined ? undefined : await connectShardedAdapter(redis);
const state = new RelayState<SioPeer>();
const http = createServer((request, response) => {
  if (request.url?.startsWith("/socket.io/")) return; // Engine.IO answers these
  response.writeHead(200, { "content-type": "application/json" });
  response.end(JSON.stringify({ status: "ok", peers: state.peers.size }));
});
const io = new Server(http, { path: "/socket.io/", serveClient: false, perMessageDeflate: false, httpCompression: false, pingInterval: 30_000, pingTimeout: 5_000, ...(sharded === undefined ? {} : { adapter: sharded.adapter }) });

/**
 * The room a signal or relay goes to (its target's fingerprint), or an error code. One process
 * checks that the target exists and shares a namespace with the sender; a node of several cannot
 * tell, so it only checks that `to` names a room.
 */
const targetRoom =
  sharded === undefined
    ? (from: SioPeer, to: unknown): string | 400 | 403 | 404 => {
        const target = state.target(from, to);
        return typeof target === "number" ? target : target.fingerprint;
      }
    : (_from: SioPeer, to: unknown): string | 400 => (typeof to === "string" ? to : 400);

function reply(socket: Socket, ack: Ack, type: string, body: Record<string, unknown>): void {
  if (ack !== undefined) ack({ type, ...body });
  else socket.emit(type, body);
}

const asAck = (value: unknown): Ack => (typeof value === "function" ? (value as Ack) : undefined);

io.on("connection", (socket) => {
  const peer: SioPeer = { socket, fingerprint: "", namespaces: new Set() };
  socket.on("register", (envelope: Envelope, ack: unknown) => {
    const fingerprint = state.register(peer, String(envelope?.payload?.["public_key"]));
    void socket.join(fingerprint);
    reply(socket, asAck(ack), "registered", { from: fingerprint, payload: { fingerprint, alias: aliasOf(fingerprint) } });
  });
  socket.on("join", (envelope: Envelope, ack: unknown) => {
    const namespace = String(envelope?.payload?.["namespace"]);
    if (state.join(peer, namespace) !== undefined) {
      void socket.join(`ns:${namespace}`);
      socket.to(`ns:${namespace}`).emit("peer_joined", { from: peer.fingerprint, namespace, payload: { fingerprint: peer.fingerprint, alias: aliasOf(peer.fingerprint) } });
    }
    // With --redis, the members of this node only.
    reply(socket, asAck(ack), "peer_list", { namespace, payload: state.peerList(namespace) });
  });
  const targeted = (type: string) => (envelope: Envelope, ack: unknown) => {
    const room = targetRoom(peer, envelope?.to);
    if (typeof room === "number") {
      reply(socket, asAck(ack), "error", { payload: { code: room, message: "error", ref: type } });
      return;
    }
    io.to(room).emit(type, { from: peer.fingerprint, to: room, payload: envelope?.payload, ts: Date.now() });
    asAck(ack)?.({ type: "ok", payload: { ref: type } });
  };
  socket.on("signal", targeted("signal"));
  socket.on("relay", targeted("relay"));
  socket.on("broadcast", (envelope: Envelope, ack: unknown) => {
    const namespace = String(envelope?.payload?.["namespace"]);
    if (!peer.namespaces.has(namespace)) {
      reply(socket, asAck(ack), "error", { payload: { code: 403, message: "error", ref: "broadcast" } });
      return;
    }
    // The adapter encodes the packet once for every recipient.
    socket.to(`ns:${namespace}`).emit("broadcast", { from: peer.fingerprint, namespace, payload: { namespace, data: envelope?.payload?.["data"] }, ts: Date.now() });
    asAck(ack)?.({ type: "ok", payload: { ref: "broadcast" } });
  });
  socket.on("disconnect", () => {
    if (peer.fingerprint !== "") state.remove(peer);
  });
});

http.listen(port, host, () => announce((http.address() as AddressInfo).port));
const stop = (): void => {
  void io.close();
  sharded?.close();
  process.exit(0);
};
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
