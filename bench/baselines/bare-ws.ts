import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Server } from "socket.io";
import { WebSocketServer, type WebSocket } from "ws";
import { AdapterPeers } from "./adapter-peers.ts";
import { RelayState, aliasOf, announce, listenArgs, type RelayPeer } from "./relay-state.ts";
import { connectShardedAdapter, type ShardedAdapter } from "./sharded-adapter.ts";

/**
 * Baseline: the smallest raw WebSocket relay that speaks the server's JSON envelopes for
 * register, join, signal and broadcast. What a hand-written relay on bare `ws` costs.
 *
 * With `--redis`, one node of a relay spread over several: messages go through Socket.IO's
 * sharded Redis adapter (see AdapterPeers), each peer in a room named after its fingerprint. No
 * state is shared between nodes: a signal goes to the room its `to` names, unchecked.
 */
interface WsPeer extends RelayPeer {
  readonly socket: WebSocket;
  /** The peer's id in the adapter (with --redis). */
  adapterId: string;
}

/** How the relay's messages reach their recipients. */
interface Delivery {
  accepted(peer: WsPeer): void;
  registered(peer: WsPeer): void;
  /** Announces a peer that has just joined `namespace` to its other `members` (those of this node, in one process). */
  joined(peer: WsPeer, namespace: string, members: ReadonlySet<WsPeer>): void;
  /** Delivers a signal or relay; an error code when it cannot. */
  toPeer(from: WsPeer, type: string, to: unknown, payload: unknown): 400 | 403 | 404 | undefined;
  /** Delivers a broadcast from a member of `namespace` to the others. */
  toNamespace(from: WsPeer, namespace: string, data: unknown): void;
  closed(peer: WsPeer): void;
}

const state = new RelayState<WsPeer>();

/** One process: every peer is here, so messages are written straight to the target's socket. */
const direct: Delivery = {
  accepted: () => undefined,
  registered: () => undefined,
  joined(peer, namespace, members) {
    const frame = JSON.stringify({ type: "peer_joined", from: peer.fingerprint, namespace, payload: { fingerprint: peer.fingerprint, alias: aliasOf(peer.fingerprint) } });
    for (const member of members) if (member !== peer) member.socket.send(frame);
  },
  toPeer(from, type, to, payload) {
    const target = state.target(from, to);
    if (typeof target === "number") return target;
    target.socket.send(JSON.stringify({ type, from: from.fingerprint, to: target.fingerprint, payload, ts: Date.now() }));
    return undefined;
  },
  toNamespace(from, namespace, data) {
    // Serialized once, the same string sent to every member.
    const frame = JSON.stringify({ type: "broadcast", from: from.fingerprint, namespace, payload: { namespace, data }, ts: Date.now() });
    for (const member of state.namespaces.get(namespace) ?? []) if (member !== from) member.socket.send(frame);
  },
  closed: () => undefined,
};

/**
 * Several nodes: every message goes to an adapter room (the target's fingerprint, or `ns:` and
 * the namespace), which reaches its members on every node. Nothing tells a node whether a peer
 * of another node exists or shares a namespace with the sender.
 */
function throughAdapter(peers: AdapterPeers): Delivery {
  return {
    accepted(peer) {
      peer.adapterId = peers.add((frame) => peer.socket.send(frame));
    },
    registered(peer) {
      peers.join(peer.adapterId, peer.fingerprint);
    },
    joined(peer, namespace) {
      peers.join(peer.adapterId, `ns:${namespace}`);
      peers.emit(`ns:${namespace}`, "peer_joined", { from: peer.fingerprint, namespace, payload: { fingerprint: peer.fingerprint, alias: aliasOf(peer.fingerprint) } }, peer.adapterId);
    },
    toPeer(from, type, to, payload) {
      if (typeof to !== "string") return 400;
      peers.emit(to, type, { from: from.fingerprint, to, payload, ts: Date.now() });
      return undefined;
    },
    toNamespace(from, namespace, data) {
      peers.emit(`ns:${namespace}`, "broadcast", { from: from.fingerprint, namespace, payload: { namespace, data }, ts: Date.now() }, from.adapterId);
    },
    closed(peer) {
      peers.remove(peer.adapterId);
    },
  };
}

const { host, port, redis } = listenArgs();
let sharded: ShardedAdapter | undefined;
let delivery = direct;
if (redis !== undefined) {
  sharded = await connectShardedAdapter(redis);
  // A Socket.IO server for its adapter only: it serves no connection.
  delivery = throughAdapter(new AdapterPeers(new Server({ adapter: sharded.adapter, serveClient: false }).of("/")));
}

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
  const peer: WsPeer = { socket, fingerprint: "", namespaces: new Set(), adapterId: "" };
  delivery.accepted(peer);
  socket.on("message", (data: Buffer) => onMessage(peer, data));
  socket.on("close", () => {
    delivery.closed(peer);
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
      delivery.registered(peer);
      peer.socket.send(JSON.stringify({ type: "registered", from: fingerprint, payload: { fingerprint, alias: aliasOf(fingerprint) } }));
      return;
    }
    case "join": {
      const namespace = String(payload["namespace"]);
      const members = state.join(peer, namespace);
      if (members !== undefined) delivery.joined(peer, namespace, members);
      // With --redis, the members of this node only.
      peer.socket.send(JSON.stringify({ type: "peer_list", namespace, payload: state.peerList(namespace) }));
      return;
    }
    case "signal":
    case "relay": {
      const failed = delivery.toPeer(peer, message.type, message.to, payload);
      if (failed !== undefined) peer.socket.send(error(failed, message.type));
      return;
    }
    case "broadcast": {
      const namespace = String(payload["namespace"]);
      if (!peer.namespaces.has(namespace)) {
        peer.socket.send(error(403, "broadcast"));
        return;
      }
      delivery.toNamespace(peer, namespace, payload["data"]);
      return;
    }
    default:
      peer.socket.send(error(400, String(message.type)));
  }
}

http.listen(port, host, () => announce((http.address() as AddressInfo).port));
const stop = (): void => {
  http.close();
  sharded?.close();
  process.exit(0);
};
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
