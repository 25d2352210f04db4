import type { ReceivedEnvelope } from "./envelope.ts";
import { ErrorCode, ProtocolError } from "./errors.ts";
import { REQUEST_VALIDATORS, type ClientRequest } from "./requests.ts";

/** What the decoder yields: a valid request, or the error that answers it. */
export type DecodedRequest = ClientRequest | ProtocolError;

/**
 * Decodes one client message into a typed, validated request: the one way from the wire into the
 * core, for every transport (raw /ws, Socket.IO) and every dialect to come. Each transport keeps
 * its own framing and edge checks (size, JSON, depth, what the type is called on its wire), then
 * hands over the message's type and envelope fields here; nothing here knows a transport.
 *
 * Never throws. A bad message yields a ProtocolError whose `ref` is `type`: 400 for an unknown
 * type or a bad field (its message names the field), 500 with the `cause` if a validator failed
 * unexpectedly. The hub answers it in request order, like a handler's error.
 *
 * @param payloadJson the payload's text exactly as received, when the transport has it (raw /ws
 *   signal and relay): a targeted request forwards it as is.
 */
export function decodeRequest(type: string, envelope: ReceivedEnvelope, payloadJson?: string): DecodedRequest {
  const validate = REQUEST_VALIDATORS.get(type);
  if (validate === undefined) return new ProtocolError(ErrorCode.BadRequest, `unknown message type "${type}"`, type);
  try {
    return validate(envelope, payloadJson);
  } catch (error) {
    if (error instanceof ProtocolError) return new ProtocolError(error.code, error.message, type);
    return new ProtocolError(ErrorCode.Internal, "internal error", type, { cause: error });
  }
}

/** True for the wire types the decoder knows. */
export const isRequestType = (type: string): boolean => REQUEST_VALIDATORS.has(type);
