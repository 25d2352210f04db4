import type { IncomingMessage } from "node:http";
import type { WebSocket } from "ws";
import type { Config } from "../../config/load.ts";
import type { Hub } from "../../core/hub.ts";
import type { Ack, Session } from "../../core/session.ts";
import { CloseCode, ErrorCode } from "../../protocol/errors.ts";
import { nestsDeeperThan } from "../../protocol/json-depth.ts";
import { memberText } from "../../protocol/json-span.ts";
import type { PingRequest } from "../../protocol/requests.ts";
import type { ErrorPayload, ServerBody } from "../../protocol/server-messages.ts";
import { accessTokensConfigured } from "../../trust/access-tokens.ts";
import type { WsConnectionContext } from "../../transport/ws-connection.ts";
import type { RefusedUpgrade, WsProtocol } from "../../transport/ws-endpoint.ts";
import { forwardedSignal } from "../dialect-connection.ts";
import { submit, type Dialect, type DialectDeps } from "../dialect.ts";
import { PigeonConnection } from "./connection.ts";
import { createPigeonHttp } from "./http.ts";
import { peerIdOfRequest, pigeonUpgradeCheck } from "./upgrade.ts";
import {
  DEFAULT_NETWORK,
  DISCOVERY_LIMIT,
  SIGNAL_TYPES,
  announceMeta,
  connectedFrame,
  identityOf,
  isNetworkName,
  isPeerId,
  pongFrame,
  scopeOf,
  unroutedMessage,
} from "./wire.ts";

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);

const PING: PingRequest = Object.freeze({ type: "ping" });
const ignore: Ack = () => undefined;

/** The payload of a core error reply, or undefined for any other reply. */
const errorOf = (reply: Record<string, unknown>): ErrorPayload | undefined => (reply["type"] === "error" ? (reply["payload"] as ErrorPayload) : undefined);
const errorMessage = (reply: Record<string, unknown>): string | undefined => errorOf(reply)?.message;

/**
 * PeerPigeon's clients (the JS and Go originals' WebSocket protocol), at `/pigeon` and
 * `/pigeon/ws`: one world. docs/dialects/pigeon.md describes every message and decision.
 */
export function createPigeonDialect(deps: DialectDeps): Dialect {
  return {
    name: "pigeon",
    wsPaths: ["/pigeon", "/pigeon/ws"],
    protocol: new PigeonProtocol(deps.config, deps.hub),
    handleHttp: createPigeonHttp(deps),
  };
}

/**
 * Each frame of a PeerPigeon client becomes one core request (register on open, join for
 * announce, leave for goodbye, signal for offer/answer/ice-candidate, ping); the replies come
 * back through callbacks here and become PeerPigeon frames, or nothing where the originals were
 * silent. Frames the server refuses (bad JSON, unknown types, too deep, binary) are answered
 * `error` through the hub's queue, so they keep their turn and spend the message budget.
 */
class PigeonProtocol implements WsProtocol<PigeonConnection> {
  readonly name = "pigeon";
  readonly checkUpgrade: (request: IncomingMessage) => RefusedUpgrade | undefined;

  constructor(
    private readonly config: Config,
    private readonly hub: Hub,
  ) {
    // With access tokens on, the token a client presents is its JWT, which the connection gate checked.
    this.checkUpgrade = pigeonUpgradeCheck(accessTokensConfigured(config) ? "" : config.pigeonAuthToken);
  }

  createConnection(id: string, socket: WebSocket, context: WsConnectionContext, request: IncomingMessage): PigeonConnection {
    return new PigeonConnection(id, socket, context, request.socket, peerIdOfRequest(request));
  }

  opened(session: Session, connection: PigeonConnection): void {
    connection.sendFrame(connectedFrame(connection.peerId, Date.now()));
    const identity = identityOf(connection.peerId);
    submit(this.hub, session, { type: "register", payload: { publicKey: "", alias: undefined, meta: {}, identity } }, (reply) => {
      const failure = errorMessage(reply);
      if (failure === undefined) return;
      // Unregistered, nothing else would work: the client had better come back later.
      connection.sendError(failure);
      connection.close(CloseCode.TryAgainLater, "registration failed");
    });
  }

  receiveBinary(session: Session, connection: PigeonConnection): void {
    this.refuse(session, connection, "binary frames are not supported; send JSON text");
  }

  receiveText(session: Session, connection: PigeonConnection, text: string): void {
    let message: unknown;
    try {
      message = JSON.parse(text);
    } catch {
      this.refuse(session, connection, "invalid JSON");
      return;
    }
    if (!isObject(message)) {
      this.refuse(session, connection, "a message must be a JSON object");
      return;
    }
    if (nestsDeeperThan(message, this.config.maxJsonDepth)) {
      this.refuse(session, connection, `a message may nest at most ${this.config.maxJsonDepth} levels`);
      return;
    }
    const type = message["type"];
    if (typeof type !== "string") {
      this.refuse(session, connection, "type is required");
      return;
    }
    switch (type) {
      case "announce":
        this.announce(session, connection, message);
        return;
      case "goodbye":
        this.goodbye(session, connection);
        return;
      case "offer":
      case "answer":
      case "ice-candidate":
        this.signal(session, connection, message, type, text);
        return;
      case "ping":
        submit(this.hub, session, PING, (reply) => {
          const failure = errorMessage(reply);
          if (failure !== undefined) connection.sendError(failure);
          else connection.sendFrame(pongFrame(connection.peerId, connection.networkName, (reply as { ts?: number }).ts ?? Date.now()));
        });
        return;
      case "peer-discovered":
      case "cleanup":
        // What hubs told each other, and a no-op, in the originals: no client's business here.
        return;
      default:
        this.refuse(session, connection, unroutedMessage(type));
    }
  }

  /**
   * `announce`: the peer enters the network (leaving the one it was in; its members are told),
   * its members are told of it, and it is told of each of them, oldest first.
   */
  private announce(session: Session, connection: PigeonConnection, fields: Record<string, unknown>): void {
    const requested = fields["networkName"];
    const network = requested === undefined || requested === null || requested === "" ? DEFAULT_NETWORK : requested;
    if (!isNetworkName(network)) {
      this.refuse(session, connection, "networkName must be 1-64 letters, digits or _ - . : ~ @ +");
      return;
    }
    const data = fields["data"];
    const isHub = isObject(data) && data["isHub"] === true ? true : network === this.config.pigeonHubMeshNamespace;
    const previous = connection.network;
    const generation = ++connection.generation;
    connection.network = network;
    const request = { namespace: scopeOf(network), appType: "", meta: announceMeta(data, isHub, Date.now()), exclusive: true, listLimit: DISCOVERY_LIMIT };
    submit(this.hub, session, { type: "join", payload: request }, (reply) => {
      if (generation !== connection.generation) return; // a later announce or goodbye decides where it is
      const failure = errorOf(reply);
      if (failure === undefined) {
        connection.known.clear();
        connection.discover(network, (reply as unknown as ServerBody<"peer_list">).payload.peers);
        return;
      }
      connection.sendError(failure.message);
      if (failure.code === ErrorCode.TooMany) {
        // Refused before anything happened: it is where it was.
        connection.network = previous;
        return;
      }
      // It may have left its former network, or half entered the new one: it leaves both, and is in none.
      connection.network = undefined;
      connection.known.clear();
      for (const scope of new Set([previous, network])) if (scope !== undefined) submit(this.hub, session, { type: "leave", payload: { namespace: scopeOf(scope) } }, ignore);
    });
  }

  /** `goodbye`: the peer leaves its network, whose members are told; it stays connected and may announce again. */
  private goodbye(session: Session, connection: PigeonConnection): void {
    const network = connection.network;
    if (network === undefined) return;
    const generation = ++connection.generation;
    connection.network = undefined;
    submit(this.hub, session, { type: "leave", payload: { namespace: scopeOf(network) } }, (reply) => {
      const failure = errorOf(reply);
      if (failure?.code === ErrorCode.TooMany && generation === connection.generation) {
        // Refused before anything happened: it is still in its network.
        connection.network = network;
        connection.sendError(failure.message);
        return;
      }
      // Left (or, 404, in no network after all).
      connection.known.clear();
    });
  }

  /**
   * `offer`, `answer`, `ice-candidate`: to one peer of the sender's own network, `data` untouched.
   * The core checks that they share the network; a refusal (another network, not announced,
   * unknown peer, itself) is dropped silently, as the originals dropped what they could not
   * deliver. Only a sender over its message rate is told (`error`), so that it slows down.
   */
  private signal(session: Session, connection: PigeonConnection, fields: Record<string, unknown>, type: string, text: string): void {
    const target = fields["targetPeerId"];
    if (!isPeerId(target) || !SIGNAL_TYPES.has(type)) return;
    const { payload, payloadJson } = forwardedSignal(type, fields["data"], memberText(text, "data"));
    submit(this.hub, session, { type: "signal", to: identityOf(target), payload, payloadJson }, (reply) => {
      const failure = errorOf(reply);
      if (failure?.code === ErrorCode.TooMany) connection.sendError(failure.message);
    });
  }

  /** Answers a refused frame with `error`, in its turn. */
  private refuse(session: Session, connection: PigeonConnection, message: string): void {
    this.hub.reject(session, ErrorCode.BadRequest, message, (reply) => connection.sendError(errorMessage(reply) ?? message));
  }
}
