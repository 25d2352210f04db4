import type { IncomingMessage } from "node:http";
import { performance } from "node:perf_hooks";
import type { WebSocket } from "ws";
import type { Config } from "../../config/load.ts";
import type { Hub } from "../../core/hub.ts";
import type { Session } from "../../core/session.ts";
import { CloseCode } from "../../protocol/errors.ts";
import type { WsConnectionContext } from "../../transport/ws-connection.ts";
import type { WsProtocol } from "../../transport/ws-endpoint.ts";
import type { Dialect, DialectDeps } from "../dialect.ts";
import { sharedTokenCheck } from "../shared-token.ts";
import { RandomChatConnection, type RandomChatShared } from "./connection.ts";
import { FrameRate } from "./frame-rate.ts";
import { handleRandomChatHttp } from "./http.ts";
import { PONG_FRAME, RandomChatError, parseFrame, readyFrame, type ClientFrame } from "./wire.ts";

/** Where the random-chat clients connect. */
export const RANDOMCHAT_WS_PATH = "/randomchat/ws";

/**
 * The random video-chat server's protocol at `/randomchat/ws` (see docs/dialects/randomchat.md):
 * users wait in one queue for the whole deployment, are paired first come, first served (never
 * with the user they just left), and exchange offer, answer and ice with their partner.
 */
export function createRandomChatDialect(deps: DialectDeps): Dialect {
  const protocol = new RandomChatProtocol(deps.config, deps.hub, new FrameRate(deps.config.randomchatMaxMsgPerSecond, () => performance.now()));
  return {
    name: "randomchat",
    wsPaths: [RANDOMCHAT_WS_PATH],
    protocol,
    handleHttp: (path, request, response) => handleRandomChatHttp(deps, path, request, response),
  };
}

/** Each connection: its greeting and registration, then its frames, rate-limited and checked, handed to its RandomChatConnection. */
export class RandomChatProtocol implements WsProtocol<RandomChatConnection> {
  readonly name = "randomchat";
  private readonly shared: RandomChatShared;
  private readonly allowedOrigins: ReadonlySet<string>;
  /** Whether a presented token is the configured one (constant time); undefined when none is configured. */
  private readonly tokenMatches: ((candidate: unknown) => boolean) | undefined;

  constructor(
    private readonly config: Config,
    hub: Hub,
    private readonly rate: FrameRate,
  ) {
    this.shared = { hub, config };
    this.allowedOrigins = new Set(config.randomchatAllowedOrigins);
    this.tokenMatches = sharedTokenCheck(config.randomchatAuthToken);
  }

  createConnection(id: string, socket: WebSocket, context: WsConnectionContext, request: IncomingMessage): RandomChatConnection {
    return new RandomChatConnection(id, socket, context, request.socket, this.shared, this.rate.bucket());
  }

  opened(session: Session, connection: RandomChatConnection, request: IncomingMessage): void {
    // As the original: the socket is accepted, then closed if its Origin is not listed (no Origin is not listed either).
    if (this.allowedOrigins.size > 0 && !this.allowedOrigins.has(request.headers.origin ?? "")) {
      connection.close(CloseCode.PolicyViolation, "origin not allowed");
      return;
    }
    connection.session = session;
    connection.sendFrame(readyFrame(connection.clientId));
    connection.request({ type: "register", payload: { publicKey: "", alias: undefined, meta: {}, identity: connection.identity } }, (reply) => {
      // Without its registration the connection can do nothing; its client may connect again.
      if (reply["type"] === "error") connection.close(CloseCode.TryAgainLater, "registration failed");
    });
  }

  receiveText(_session: Session, connection: RandomChatConnection, text: string): void {
    if (!this.rate.take(connection.bucket)) {
      connection.refuse(RandomChatError.RateLimit);
      return;
    }
    const frame = parseFrame(text, this.config.maxJsonDepth);
    if ("refused" in frame) connection.refuse(frame.refused);
    else this.handle(connection, frame);
  }

  receiveBinary(_session: Session, connection: RandomChatConnection): void {
    if (!this.rate.take(connection.bucket)) connection.refuse(RandomChatError.RateLimit);
    else connection.refuse(RandomChatError.InvalidFormat);
  }

  private handle(connection: RandomChatConnection, frame: ClientFrame): void {
    switch (frame.type) {
      case "auth":
        this.auth(connection, frame.userId, frame.token);
        return;
      case "available":
        if (connection.authorized) connection.available();
        else connection.refuse(RandomChatError.Unauthorized);
        return;
      case "offer":
      case "answer":
      case "ice":
        connection.relay(frame.type, frame.value, frame.valueText);
        return;
      case "next":
        connection.nextPartner();
        return;
      case "leave":
        connection.leaveChat();
        return;
      case "ping":
        // Through the core: in order with the connection's other requests, and from its budget.
        connection.request({ type: "ping" }, (reply) => {
          if (reply["type"] === "pong") connection.sendFrame(PONG_FRAME);
          else connection.refuseFor((reply["payload"] as { code?: number } | undefined)?.code);
        });
        return;
    }
  }

  /**
   * `auth {userId?, token?}`: keeps the userId; no reply, as the original. With a configured token,
   * a wrong or missing one gets UNAUTHORIZED and the socket is closed (1008).
   */
  private auth(connection: RandomChatConnection, userId: string | undefined, token: unknown): void {
    if (userId !== undefined) connection.userId = userId;
    if (this.tokenMatches === undefined) return;
    if (this.tokenMatches(token)) {
      connection.authorized = true;
      return;
    }
    connection.refuse(RandomChatError.Unauthorized);
    connection.close(CloseCode.PolicyViolation, "unauthorized");
  }
}

