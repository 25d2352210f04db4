import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { WebSocketServer, type WebSocket } from "ws";
import { RelayState, aliasOf, announce, listenArgs, type RelayPeer } from "./relay-state.ts";

/**
 * Baseline: the smallest raw WebSocket relay that speaks the server's JSON envelopes for
 * register, join, signal and broadcast. What a hand-written relay on bare `ws` costs.
 */
interface WsPeer extends RelayPeer {
  readonly socket: WebSocket;
}

const state = new RelayState<WsPeer>();
const http = createServer((_request, response) => {
  response.writeHead(200, { "content-type": "application/json" });
  response.end(JSON.stringify({ status: "ok", peers: state.peers.size }));
});
const wss = new WebSocketServer({ noServer: true, clientTracking: false, perMessageDeflate: false, maxPayload: 65_536 });

http.on("upgrade", (request, socket, head: Buffer) => {
  if (request.url?.split("?", 1)[0] !== "/ws") {
    socket.destroy();
    return;
  }
  wss.handleUpgrade(request, socket, head, (ws) => accept(ws));
});

function accept(socket: WebSocket): void {
  const peer: WsPeer = { socket, fingerprint: "", namespaces: new Set() };
  socket.on("message", (data: Buffer) => onMessage(peer, data));
  socket.on("close", () => {
    if (peer.fingerprint !== "") state.remove(peer);
  });
  socket.on("error", () => undefined);
}

const error = (code: number, ref: string): string => JSON.stringify({ type: "error", payload: { code, message: "error", ref } });

function onMessage(peer: WsPeer, data: Buffer): void {
  let message: { type?: unknown; to?: unknown; payload?: Record<string, unknown> };
  try {
    message = JSON.parse(data.toString()) as typeof message;
  } catch {
    peer.socket.send(error(400, ""));
    return;
  }
  const payload = message.payload ?? {};
  switch (message.type) {
    case "register": {
      const fingerprint = state.register(peer, String(payload["public_key"]));
      peer.socket.send(JSON.stringify({ type: "registered", from: fingerprint, payload: { fingerprint, alias: aliasOf(fingerprint) } }));
      return;
    }
    case "join": {
      const namespace = String(payload["namespace"]);
      const members = state.join(peer, namespace);
      if (members !== undefined) {
        const frame = JSON.stringify({ type: "peer_joined", from: peer.fingerprint, namespace, payload: { fingerprint: peer.fingerprint, alias: aliasOf(peer.fingerprint) } });
        for (const member of members) if (member !== peer) member.socket.send(frame);
      }
      peer.socket.send(JSON.stringify({ type: "peer_list", namespace, payload: state.peerList(namespace) }));
      return;
    }
    case "signal":
    case "relay": {
      const target = state.target(peer, message.to);
      if (typeof target === "number") {
        peer.socket.send(error(target, message.type));
        return;
      }
      target.socket.send(JSON.stringify({ type: message.type, from: peer.fingerprint, to: target.fingerprint, payload, ts: Date.now() }));
      return;
    }
    case "broadcast": {
      const namespace = String(payload["namespace"]);
      const members = state.namespaces.get(namespace);
      if (members === undefined || !members.has(peer)) {
        peer.socket.send(error(403, "broadcast"));
        return;
      }
      // Serialized once, the same string sent to every member.
      const frame = JSON.stringify({ type: "broadcast", from: peer.fingerprint, namespace, payload: { namespace, data: payload["data"] }, ts: Date.now() });
      for (const member of members) if (member !== peer) member.socket.send(frame);
      return;
    }
    default:
      peer.socket.send(error(400, String(message.type)));
  }
}

const { host, port } = listenArgs();
http.listen(port, host, () => announce((http.address() as AddressInfo).port));
const stop = (): void => {
  http.close();
  process.exit(0);
};
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
