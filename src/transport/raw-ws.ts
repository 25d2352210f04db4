import type { IncomingMessage } from "node:http";
import type { WebSocket } from "ws";
import type { Config } from "../config/load.ts";
import type { Hub } from "../core/hub.ts";
import type { Session } from "../core/session.ts";
import { decodeRequest } from "../protocol/decoder.ts";
import { ErrorCode } from "../protocol/errors.ts";
import { nestsDeeperThan } from "../protocol/json-depth.ts";
import { memberText } from "../protocol/json-span.ts";
import { WsConnection, type WsConnectionContext } from "./ws-connection.ts";
import type { WsProtocol } from "./ws-endpoint.ts";

/** The `/ws` endpoint's protocol: the documented JSON envelopes, decoded into the core's requests. */
export class NativeWsProtocol implements WsProtocol {
  readonly name = "ws";

  constructor(
    private readonly config: Config,
    private readonly hub: Hub,
  ) {}

  createConnection(id: string, socket: WebSocket, context: WsConnectionContext, request: IncomingMessage): WsConnection {
    return new WsConnection(id, this.name, socket, context, request.socket);
  }

  receiveBinary(session: Session): void {
    this.hub.reject(session, ErrorCode.BadRequest, "binary frames are not supported; send JSON text");
  }

  receiveText(session: Session, _connection: WsConnection, text: string): void {
    let message: unknown;
    try {
      message = JSON.parse(text);
    } catch {
      this.hub.reject(session, ErrorCode.BadRequest, "invalid JSON");
      return;
    }
    if (typeof message !== "object" || message === null || Array.isArray(message)) {
      this.hub.reject(session, ErrorCode.BadRequest, "a message must be a JSON object");
      return;
    }
    const fields = message as Record<string, unknown>;
    const type = fields["type"];
    if (nestsDeeperThan(message, this.config.maxJsonDepth)) {
      const ref = typeof type === "string" ? type : undefined;
      this.hub.reject(session, ErrorCode.BadRequest, `a message may nest at most ${this.config.maxJsonDepth} levels (max_json_depth)`, undefined, ref);
      return;
    }
    if (typeof type !== "string") {
      this.hub.reject(session, ErrorCode.BadRequest, "type is required");
      return;
    }
    // Signal and relay payloads are forwarded as the text they arrived as: never serialized again.
    const forwarded = type === "signal" || type === "relay";
    this.hub.receive(session, decodeRequest(type, fields, forwarded ? memberText(text, "payload") : undefined));
  }
}
