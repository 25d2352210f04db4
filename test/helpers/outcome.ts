import { ProtocolError } from "../../src/protocol/errors.ts";

/** How a call ended and how long it took: the ProtocolError's code (anything else it failed with as is; undefined if it succeeded). */
export async function codeAndTime(call: Promise<unknown>): Promise<{ code: unknown; elapsed: number }> {
  const started = Date.now();
  const error: unknown = await call.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  return { code: error instanceof ProtocolError ? error.code : error, elapsed: Date.now() - started };
}
