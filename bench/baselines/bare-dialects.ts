import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { WebSocketServer, type WebSocket } from "ws";
import { announce, listenArgs } from "./relay-state.ts";

/**
 * Baseline: the smallest hand-written relay on bare `ws` for the three dialects' frames, on the
 * paths the server mounts them (`/pigeon`, `/p2p/ws`, `/randomchat/ws`), for the flows the bench
 * drives only: PeerPigeon connect, announce and offer/answer/ice-candidate within a network; p2p
 * IDENTIFY, JOIN_ROOM and SDP/ICE relay within a room; random chat ready, a first-come first-served
 * `available` queue, and offer/answer/ice to the partner. Each frame is parsed and the delivered one
 * built with JSON.stringify, as the originals do; no rate limits, send buffers, departures to
 * announce beyond the partner's, or clustering.
 */

type Frame = Record<string, unknown>;

const http = createServer((_request, response) => {
  response.writeHead(200, { "content-type": "application/json" });
  response.end(JSON.stringify({ status: "ok" }));
});
const wss = new WebSocketServer({ noServer: true, clientTracking: false, perMessageDeflate: false, maxPayload: 65_536 });

function parse(data: Buffer): Frame | undefined {
  try {
    const value: unknown = JSON.parse(data.toString());
    return typeof value === "object" && value !== null ? (value as Frame) : undefined;
  } catch {
    return undefined;
  }
}

// PeerPigeon ---------------------------------------------------------------------------------

interface PigeonPeer {
  readonly socket: WebSocket;
  readonly peerId: string;
  network: string | undefined;
}

const pigeonPeers = new Map<string, PigeonPeer>();
const pigeonNetworks = new Map<string, Set<PigeonPeer>>();

function pigeonLeave(peer: PigeonPeer): void {
  if (peer.network === undefined) return;
  const members = pigeonNetworks.get(peer.network);
  members?.delete(peer);
  if (members?.size === 0) pigeonNetworks.delete(peer.network);
}

function pigeonDiscovered(about: PigeonPeer, data: unknown, to: PigeonPeer, networkName: string): string {
  return JSON.stringify({
    type: "peer-discovered",
    data: { ...(typeof data === "object" && data !== null ? data : {}), peerId: about.peerId, isHub: false },
    fromPeerId: "system",
    targetPeerId: to.peerId,
    networkName,
    timestamp: Date.now(),
  });
}

const pigeonData = new WeakMap<PigeonPeer, unknown>();

function acceptPigeon(socket: WebSocket, peerId: string): void {
  if (pigeonPeers.has(peerId)) {
    socket.close(1008, "Peer already connected");
    return;
  }
  const peer: PigeonPeer = { socket, peerId, network: undefined };
  pigeonPeers.set(peerId, peer);
  socket.send(JSON.stringify({ type: "connected", data: { peerId }, fromPeerId: "system", networkName: "global", timestamp: Date.now() }));
  socket.on("message", (data: Buffer) => {
    const message = parse(data);
    if (message === undefined) return;
    switch (message["type"]) {
      case "announce": {
        const networkName = typeof message["networkName"] === "string" ? message["networkName"] : "global";
        pigeonLeave(peer);
        peer.network = networkName;
        pigeonData.set(peer, message["data"]);
        let members = pigeonNetworks.get(networkName);
        if (members === undefined) {
          members = new Set();
          pigeonNetworks.set(networkName, members);
        }
        for (const other of members) other.socket.send(pigeonDiscovered(peer, message["data"], other, networkName));
        for (const other of members) socket.send(pigeonDiscovered(other, pigeonData.get(other), peer, networkName));
        members.add(peer);
        return;
      }
      case "offer":
      case "answer":
      case "ice-candidate": {
        const target = typeof message["targetPeerId"] === "string" ? pigeonPeers.get(message["targetPeerId"]) : undefined;
        if (target === undefined || peer.network === undefined || target.network !== peer.network) return;
        target.socket.send(
          JSON.stringify({ type: message["type"], data: message["data"], fromPeerId: peerId, targetPeerId: target.peerId, networkName: peer.network, timestamp: Date.now() }),
        );
        return;
      }
      case "ping":
        socket.send(JSON.stringify({ type: "pong", data: { timestamp: Date.now() }, fromPeerId: "system", targetPeerId: peerId, networkName: peer.network ?? "global", timestamp: Date.now() }));
        return;
      default:
    }
  });
  socket.on("close", () => {
    pigeonPeers.delete(peerId);
    const networkName = peer.network;
    pigeonLeave(peer);
    const members = networkName === undefined ? undefined : pigeonNetworks.get(networkName);
    if (members === undefined) return;
    const frame = JSON.stringify({ type: "peer-disconnected", data: { peerId, isHub: false }, fromPeerId: "system", networkName, timestamp: Date.now() });
    for (const other of members) other.socket.send(frame);
  });
}

// p2p-go-app ---------------------------------------------------------------------------------

interface P2pUser {
  readonly socket: WebSocket;
  readonly id: string;
  username: string | undefined;
  room: string | undefined;
}

const p2pUsernames = new Map<string, P2pUser>();
const p2pUsers = new Map<string, P2pUser>();
const p2pRooms = new Map<string, Map<string, P2pUser>>();

function p2pLeaveRoom(user: P2pUser): void {
  if (user.room === undefined) return;
  const members = p2pRooms.get(user.room);
  members?.delete(user.id);
  if (members !== undefined) {
    const frame = JSON.stringify({ type: "USER_LEFT_ROOM", roomId: user.room, peer: { id: user.id, username: user.username } });
    for (const other of members.values()) other.socket.send(frame);
    if (members.size === 0) p2pRooms.delete(user.room);
  }
  user.room = undefined;
}

function acceptP2p(socket: WebSocket): void {
  const user: P2pUser = { socket, id: randomUUID(), username: undefined, room: undefined };
  const authError = (message: string): void => {
    socket.send(JSON.stringify({ type: "AUTH_ERROR", status: "error", username: "", message }));
    socket.close();
  };
  socket.on("message", (data: Buffer) => {
    const message = parse(data);
    if (message === undefined) return;
    const type = message["type"];
    if (user.username === undefined) {
      const username = message["username"];
      if (type !== "IDENTIFY") return authError("Invalid initial message. Expected type 'IDENTIFY'.");
      if (typeof username !== "string" || username === "") return authError("Username cannot be empty.");
      if (p2pUsernames.has(username)) return authError("Username already taken.");
      user.username = username;
      p2pUsernames.set(username, user);
      p2pUsers.set(user.id, user);
      socket.send(JSON.stringify({ type: "AUTH_SUCCESS", status: "success", username }));
      return;
    }
    switch (type) {
      case "JOIN_ROOM": {
        const roomId = message["roomId"];
        if (typeof roomId !== "string" || roomId === "" || roomId === user.room) return;
        p2pLeaveRoom(user);
        let members = p2pRooms.get(roomId);
        if (members === undefined) {
          members = new Map();
          p2pRooms.set(roomId, members);
        }
        const list = [...members.values()].map((member) => ({ id: member.id, username: member.username }));
        const frame = JSON.stringify({ type: "NEW_PEER_IN_ROOM", roomId, peer: { id: user.id, username: user.username } });
        for (const other of members.values()) other.socket.send(frame);
        members.set(user.id, user);
        user.room = roomId;
        socket.send(JSON.stringify({ type: "ROOM_MEMBERS", roomId, members: list }));
        return;
      }
      case "SDP_OFFER":
      case "SDP_ANSWER":
      case "ICE_CANDIDATE": {
        const target = typeof message["toPeerId"] === "string" ? p2pUsers.get(message["toPeerId"]) : undefined;
        if (target === undefined || user.room === undefined || target.room !== user.room) return;
        message["fromPeerId"] = user.id;
        target.socket.send(JSON.stringify(message));
        return;
      }
      default:
    }
  });
  socket.on("close", () => {
    p2pLeaveRoom(user);
    if (user.username !== undefined && p2pUsernames.get(user.username) === user) p2pUsernames.delete(user.username);
    p2pUsers.delete(user.id);
  });
}

// Random chat --------------------------------------------------------------------------------

interface ChatUser {
  readonly socket: WebSocket;
  readonly id: string;
  partner: ChatUser | undefined;
  waiting: boolean;
  open: boolean;
}

/** First come, first served: users in the order they became available; gone or paired ones are skipped when reached. */
const waiting: ChatUser[] = [];
let waitingHead = 0;

function chatError(user: ChatUser, code: string, message: string): void {
  user.socket.send(JSON.stringify({ type: "error", code, message }));
}

function makeAvailable(user: ChatUser): void {
  while (waitingHead < waiting.length) {
    const other = waiting[waitingHead] as ChatUser;
    waitingHead++;
    if (!other.open || !other.waiting || other === user) continue;
    other.waiting = false;
    user.waiting = false;
    other.partner = user;
    user.partner = other;
    const roomId = randomUUID();
    other.socket.send(JSON.stringify({ type: "matched", roomId, partnerId: user.id }));
    user.socket.send(JSON.stringify({ type: "matched", roomId, partnerId: other.id }));
    return;
  }
  if (waitingHead > 1_024 && waitingHead * 2 > waiting.length) {
    waiting.splice(0, waitingHead);
    waitingHead = 0;
  }
  user.waiting = true;
  waiting.push(user);
}

function acceptRandomChat(socket: WebSocket): void {
  const user: ChatUser = { socket, id: randomUUID(), partner: undefined, waiting: false, open: true };
  socket.send(JSON.stringify({ type: "ready", clientId: user.id }));
  socket.on("message", (data: Buffer) => {
    const message = parse(data);
    if (message === undefined) return chatError(user, "INVALID_FORMAT", "Invalid JSON");
    switch (message["type"]) {
      case "available":
        if (user.partner !== undefined) return chatError(user, "ALREADY_PAIRED", "Already paired");
        if (!user.waiting) makeAvailable(user);
        return;
      case "offer":
      case "answer":
        if (user.partner === undefined) return chatError(user, "NOT_PAIRED", "Not paired");
        user.partner.socket.send(JSON.stringify({ type: message["type"], from: user.id, sdp: message["sdp"] }));
        return;
      case "ice":
        if (user.partner === undefined) return chatError(user, "NOT_PAIRED", "Not paired");
        user.partner.socket.send(JSON.stringify({ type: "ice", from: user.id, candidate: message["candidate"] }));
        return;
      case "ping":
        socket.send('{"type":"pong"}');
        return;
      default:
        chatError(user, "UNKNOWN_TYPE", "Unknown message type");
    }
  });
  socket.on("close", () => {
    user.open = false;
    const partner = user.partner;
    if (partner === undefined) return;
    partner.partner = undefined;
    partner.socket.send('{"type":"partner-left"}');
    if (partner.open) makeAvailable(partner);
  });
}

// Routing ------------------------------------------------------------------------------------

const PEER_ID = /^[0-9a-fA-F]{40}$/;

http.on("upgrade", (request: IncomingMessage, socket, head: Buffer) => {
  const [path = "", query = ""] = (request.url ?? "").split("?", 2);
  let accept: ((ws: WebSocket) => void) | undefined;
  if (path === "/pigeon" || path === "/pigeon/ws") {
    const peerId = new URLSearchParams(query).get("peerId") ?? "";
    if (!PEER_ID.test(peerId)) {
      socket.end("HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
      return;
    }
    accept = (ws) => acceptPigeon(ws, peerId);
  } else if (path === "/p2p/ws") accept = acceptP2p;
  else if (path === "/randomchat/ws") accept = acceptRandomChat;
  if (accept === undefined) {
    socket.destroy();
    return;
  }
  const open = accept;
  wss.handleUpgrade(request, socket, head, (ws) => {
    ws.on("error", () => undefined);
    open(ws);
  });
});

const { host, port } = listenArgs();
http.listen(port, host, () => announce((http.address() as AddressInfo).port));
const stop = (): void => {
  http.close();
  process.exit(0);
};
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
