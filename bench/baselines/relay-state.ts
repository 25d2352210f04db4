import { createHash } from "node:crypto";
import { parseArgs } from "node:util";
import type { RedisArgs } from "./sharded-adapter.ts";

/**
 * The state a minimal relay needs, shared by the bare ws and bare Socket.IO baselines: peers by
 * fingerprint and namespace membership. It implements only what the bench drives (register,
 * join, signal, broadcast) with the same reply shapes as the server, so one load client drives
 * both, and nothing else: no aliases, rate limits, send buffers, matchmaking or rooms.
 */
export interface RelayPeer {
  fingerprint: string;
  readonly namespaces: Set<string>;
}

export class RelayState<P extends RelayPeer> {
  readonly peers = new Map<string, P>();
  readonly namespaces = new Map<string, Set<P>>();

  register(peer: P, publicKey: string): string {
    const fingerprint = createHash("sha256").update(publicKey, "utf8").digest("hex");
    peer.fingerprint = fingerprint;
    this.peers.set(fingerprint, peer);
    return fingerprint;
  }

  /** Adds the peer; returns the other members (for peer_joined), or undefined if it was already in. */
  join(peer: P, namespace: string): Set<P> | undefined {
    let members = this.namespaces.get(namespace);
    if (members === undefined) {
      members = new Set();
      this.namespaces.set(namespace, members);
    }
    if (members.has(peer)) return undefined;
    members.add(peer);
    peer.namespaces.add(namespace);
    return members;
  }

  /** The join reply's payload: at most 50 members, oldest first, and the total. */
  peerList(namespace: string): { namespace: string; peers: { fingerprint: string; alias: string }[]; total: number } {
    const members = this.namespaces.get(namespace) ?? new Set<P>();
    const peers: { fingerprint: string; alias: string }[] = [];
    for (const member of members) {
      if (peers.length === 50) break;
      peers.push({ fingerprint: member.fingerprint, alias: aliasOf(member.fingerprint) });
    }
    return { namespace, peers, total: members.size };
  }

  /** The target of a signal if it exists and shares a namespace with `from`; else an error code. */
  target(from: P, to: unknown): P | 400 | 403 | 404 {
    if (typeof to !== "string") return 400;
    const target = this.peers.get(to);
    if (target === undefined) return 404;
    for (const namespace of from.namespaces) if (target.namespaces.has(namespace)) return target;
    return 403;
  }

  remove(peer: P): void {
    if (this.peers.get(peer.fingerprint) === peer) this.peers.delete(peer.fingerprint);
    for (const namespace of peer.namespaces) {
      const members = this.namespaces.get(namespace);
      members?.delete(peer);
      if (members?.size === 0) this.namespaces.delete(namespace);
    }
  }
}

export const aliasOf = (fingerprint: string): string => `peer-${fingerprint.slice(0, 8)}`;

/**
 * `--host H --port P` from the command line (port 0 by default: the kernel picks one), and, for a
 * relay on several nodes, `--redis ADDR` (host:port, or a comma-separated seed list with
 * `--redis-mode cluster`).
 */
export function listenArgs(): { host: string; port: number; redis: RedisArgs | undefined } {
  const { values } = parseArgs({
    options: {
      host: { type: "string", default: "127.0.0.1" },
      port: { type: "string", default: "0" },
      redis: { type: "string" },
      "redis-mode": { type: "string", default: "single" },
    },
  });
  const mode = values["redis-mode"];
  if (mode !== "single" && mode !== "cluster") throw new Error("--redis-mode must be single or cluster");
  return { host: values.host, port: Number(values.port), redis: values.redis === undefined ? undefined : { addr: values.redis, mode } };
}

/** The line the bench waits for, in the server's log format. */
export function announce(port: number): void {
  process.stdout.write(`${JSON.stringify({ level: 30, pid: process.pid, port, msg: "listening" })}\n`);
}
