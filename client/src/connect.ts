import type { PeerClientOptions } from "./client-types.ts";
import { PeerError } from "./errors.ts";
import type { Identity } from "./identity.ts";
import type { Meta, RegisteredPayload, ServerMessage } from "./protocol.ts";
import { RawTransport } from "./raw-transport.ts";
import { serverUrl } from "./server-url.ts";
import { SocketIoTransport, type SocketIoOptions } from "./socketio-transport.ts";
import type { Transport, TransportHandlers, WebSocketConstructor } from "./transport.ts";

/**
 * Makes the transport of the next connection (with the access token of the moment: a token
 * function is asked again for every connection) and opens it. A transport that fails to open is
 * closed before the error reaches the caller.
 */
export async function openTransport(options: PeerClientOptions, handlers: TransportHandlers): Promise<Transport> {
  const base = serverUrl(options.url);
  const token = typeof options.token === "function" ? await options.token() : options.token;
  let transport: Transport;
  if (options.transport === "socket.io") {
    const socketIo: SocketIoOptions = { ...options.socketIo };
    if (token !== undefined) socketIo.auth = { token };
    transport = new SocketIoTransport(base.http, socketIo, handlers);
  } else {
    const WebSocketClass = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (WebSocketClass === undefined) throw new Error('no WebSocket here: pass the WebSocket option (in Node 20: import WebSocket from "ws")');
    transport = new RawTransport(token === undefined ? base.ws : `${base.ws}?token=${encodeURIComponent(token)}`, WebSocketClass, handlers);
  }
  try {
    await transport.open();
  } catch (error) {
    transport.close(new PeerError("connection_lost", "could not connect"));
    throw error;
  }
  return transport;
}

/** What a registration sends. */
export interface RegisterDetails {
  identity: Identity;
  alias: string | undefined;
  meta: Meta | undefined;
  /** Ask for a challenge and sign it. */
  keyProof: boolean;
  /** The last registration's token, to resume that session. */
  resumeToken: string | undefined;
  timeoutMs: number;
}

/**
 * Registers on an open transport: asks for a challenge and signs it (proof of key possession),
 * unless the server's `key_proof` is off (its `challenge` answers 400: the register goes unsigned),
 * then sends `register`. Resolves with the `registered` payload.
 */
export async function registerOn(transport: Transport, details: RegisterDetails): Promise<RegisteredPayload> {
  let signature: string | undefined;
  if (details.keyProof) {
    try {
      const challenge = (await transport.request("challenge", {}, details.timeoutMs)) as ServerMessage<"challenge">;
      signature = await details.identity.proof(challenge.payload.nonce);
    } catch (error) {
      if (!(error instanceof PeerError) || error.code !== 400) throw error;
    }
  }
  const payload = { public_key: details.identity.publicKey, alias: details.alias, meta: details.meta, signature, resume_token: details.resumeToken };
  const reply = (await transport.request("register", { payload }, details.timeoutMs)) as ServerMessage<"registered">;
  return reply.payload;
}
