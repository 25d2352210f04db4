import { randomBytes } from "node:crypto";
import type { Namespace } from "socket.io";

/**
 * Raw WebSocket peers as members of a Socket.IO namespace, so that its adapter (on several nodes,
 * the sharded Redis adapter) carries their messages the way it carries Socket.IO sockets': each
 * peer in a room named after its fingerprint, a message emitted to that room, on this node or,
 * through Redis, on another.
 *
 * Why a stand-in socket: an adapter delivers only to the entries of `Namespace#sockets`, calling
 * `client.writeToEngine(encodedPackets)` on each (socket.io-adapter 2.5 `Adapter#broadcast`), and
 * only a Socket.IO handshake creates one. Each raw peer is entered there as an object with that one
 * member, which turns the encoded event `2["type",{...}]` into the native frame
 * `{"type":"type",...}`. The server routes its /ws peers through its adapter the same way, so both
 * sides of the comparison pay for the same path.
 */
export class AdapterPeers {
  private readonly idPrefix = randomBytes(9).toString("base64url");
  private nextId = 0;

  constructor(private readonly nsp: Namespace) {}

  /**
   * Enters a peer that `send` writes to; returns its id. Ids are 20 characters like Socket.IO's
   * own: the sharded adapter treats a 20-character room as a socket id (no channel of its own).
   */
  add(send: (frame: string) => void): string {
    const id = this.idPrefix + (this.nextId++).toString(36).padStart(8, "0");
    const entry = { id, client: { writeToEngine: (encodedPackets: readonly unknown[]) => send(nativeFrame(encodedPackets[0] as string)) } };
    (this.nsp.sockets as Map<string, unknown>).set(id, entry);
    void this.nsp.adapter.addAll(id, new Set([id]));
    return id;
  }

  join(id: string, room: string): void {
    void this.nsp.adapter.addAll(id, new Set([room]));
  }

  /** Emits `type` with `body` to every member of `room` on every node, but `except` (an id). */
  emit(room: string, type: string, body: Record<string, unknown>, except?: string): void {
    const to = this.nsp.to(room);
    (except === undefined ? to : to.except(except)).emit(type, body);
  }

  remove(id: string): void {
    void this.nsp.adapter.delAll(id);
    this.nsp.sockets.delete(id);
  }
}

/** Where the type starts in an encoded event: `2["`. */
const TYPE_START = 3;

/** `2["type",{"from":...}]` → `{"type":"type","from":...}`: the relay's events have a plain type and one non-empty object. */
function nativeFrame(encoded: string): string {
  const typeEnd = encoded.indexOf('"', TYPE_START);
  return `{"type":"${encoded.slice(TYPE_START, typeEnd)}",${encoded.slice(typeEnd + 3, -1)}`;
}
