import { randomBytes } from "node:crypto";
import { expect } from "vitest";
import type { Envelope, Fields, TestPeer, Transport } from "../helpers/peers.ts";

export const otherTransport = (transport: Transport): Transport => (transport === "ws" ? "sio" : "ws");

let counter = 0;
/** A namespace (or alias) name no other test uses. Stays within [A-Za-z0-9_-] and 32 characters. */
export const unique = (prefix: string): string => `${prefix}-${++counter}-${randomBytes(3).toString("hex")}`;

/** Message types the server sends only as the direct reply to a request. */
const DIRECT_REPLIES = ["registered", "peer_list", "pong", "match", "matched", "room_created", "room_info"];

/**
 * Sends one request and returns its outcome over either transport: the direct reply, the
 * `error`, or `{type:"ok", payload:{ref}}` when the operation has no direct reply.
 *
 * Socket.IO uses an acknowledgement, so the outcome is exactly what the server acked. On /ws an
 * operation without a reply is silent, so a `ping` is sent behind it: requests are handled in
 * order, so a pong arriving first proves the request succeeded without replying.
 */
export async function outcome(peer: TestPeer, type: string, fields: Fields = {}): Promise<Envelope> {
  if (peer.transport === "sio" || type === "ping") return peer.request(type, fields, DIRECT_REPLIES);
  const first = peer.next((message) => message.type === "error" || DIRECT_REPLIES.includes(message.type));
  peer.send(type, fields);
  peer.send("ping");
  const reply = await first;
  if (reply.type === "pong") return { type: "ok", payload: { ref: type } };
  await peer.next("pong");
  return reply;
}

/**
 * Sends one request and returns its direct reply (or error), as is. Unlike `outcome`, operations
 * without a reply come back as the raw `ok` (the Socket.IO ack) or `pong` (raw ws: a ping sent
 * behind it, answered only once the request before it was handled without an error).
 */
export async function reply(from: TestPeer, type: string, fields: Fields = {}): Promise<Envelope> {
  if (from.transport === "sio") return from.request(type, fields);
  from.send(type, fields);
  from.send("ping");
  const first = await from.next((message) => message.type === "error" || DIRECT_REPLIES.includes(message.type));
  if (first.type !== "pong") await from.next("pong");
  return first;
}

/** Asserts that a request fails with `code` (and the error names the request in `ref`). */
export async function expectError(peer: TestPeer, type: string, fields: Fields, code: number): Promise<void> {
  const reply = await outcome(peer, type, fields);
  expect(reply, `${type} ${JSON.stringify(fields).slice(0, 200)}`).toMatchObject({ type: "error", payload: { code, ref: type } });
}

/** Asserts that an operation without a direct reply (leave, signal, relay, broadcast, metadata) succeeds. */
export async function expectOk(peer: TestPeer, type: string, fields: Fields): Promise<void> {
  expect(await outcome(peer, type, fields), `${type} ${JSON.stringify(fields).slice(0, 200)}`).toEqual({ type: "ok", payload: { ref: type } });
}

/** The member entry a peer list shows for `peer` (registered without a key proof, as these tests do). */
export const entryOf = (peer: TestPeer, appType = "", meta: Record<string, unknown> = {}): Record<string, unknown> => ({
  fingerprint: peer.fingerprint,
  alias: peer.alias,
  app_type: appType,
  meta,
  verified: false,
});

/** A server timestamp: Unix milliseconds close to this machine's clock (same host). */
export const serverTimestamp = (): unknown => expect.toSatisfy((ts: unknown) => typeof ts === "number" && Number.isInteger(ts) && Math.abs(ts - Date.now()) < 60_000);
