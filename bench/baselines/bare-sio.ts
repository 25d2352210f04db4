import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Server, type Socket } from "socket.io";
import { RelayState, aliasOf, announce, listenArgs, type RelayPeer } from "./relay-state.ts";

/**
 * Baseline: the smallest Socket.IO relay with one room per fingerprint. Events and envelopes are
 * the server's (event = type, one envelope argument, direct replies to an ack when given), for
 * register, join, signal and broadcast only. Targeted messages go through `io.to(fingerprint)`,
 * the idiomatic Socket.IO way.
 */
interface SioPeer extends RelayPeer {
  readonly socket: Socket;
}

type Ack = ((reply: Record<string, unknown>) => void) | undefined;
type Envelope = { to?: unknown; payload?: Record<string, unknown> } | undefined;

const state = new RelayState<SioPeer>();
const http = createServer((request, response) => {
  if (request.url?.startsWith("/socket.io/")) return; // Engine.IO answers these
  response.writeHead(200, { "content-type": "application/json" });
  response.end(JSON.stringify({ status: "ok", peers: state.peers.size }));
});
const io = new Server(http, { path: "/socket.io/", serveClient: false, perMessageDeflate: false, httpCompression: false, pingInterval: 30_000, pingTimeout: 5_000 });

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
    reply(socket, asAck(ack), "peer_list", { namespace, payload: state.peerList(namespace) });
  });
  const targeted = (type: string) => (envelope: Envelope, ack: unknown) => {
    const target = state.target(peer, envelope?.to);
    if (typeof target === "number") {
      reply(socket, asAck(ack), "error", { payload: { code: target, message: "error", ref: type } });
      return;
    }
    io.to(target.fingerprint).emit(type, { from: peer.fingerprint, to: target.fingerprint, payload: envelope?.payload, ts: Date.now() });
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

const { host, port } = listenArgs();
http.listen(port, host, () => announce((http.address() as AddressInfo).port));
const stop = (): void => {
  void io.close();
  process.exit(0);
};
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
