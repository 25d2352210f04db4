/**
 * @peer-server/client: the browser and Node SDK of peer-server.
 *
 * ```js
 * import { PeerClient, PeerConnections, Identity } from "/client/peer-server.js";
 * const client = new PeerClient({ identity: await Identity.stored("my-app") });
 * await client.register();
 * await client.joinRoom("table-7");
 * ```
 */
export { PeerClient } from "./client.ts";
export type { ConnectionState, MatchResult, PeerClientEvents, PeerClientOptions, Received, Restored } from "./client-types.ts";
export { Identity } from "./identity.ts";
export type { StorageScope } from "./identity.ts";
export { PeerError } from "./errors.ts";
export type { LocalErrorCode } from "./errors.ts";
export { PeerConnections, PeerLink } from "./webrtc.ts";
export type { PeerConnectionsOptions, PeerLinkEvents } from "./webrtc.ts";
export type { BackoffOptions } from "./backoff.ts";
export type { SocketIoOptions } from "./socketio-transport.ts";
export type { WebSocketConstructor, WebSocketLike } from "./transport.ts";
export { CloseCode, PROOF_PREFIX } from "./protocol.ts";
export type {
  Criteria,
  ErrorPayload,
  IceServerEntry,
  MemberEntry,
  Meta,
  PeerList,
  RegisteredPayload,
  RequestType,
  RoomDescription,
  ServerBodies,
  ServerMessage,
  ServerMessageType,
} from "./protocol.ts";
