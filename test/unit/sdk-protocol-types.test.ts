import { describe, expect, it } from "vitest";
import { REPLY_TYPES, type RequestType as SdkRequestType, type ServerBodies as SdkBodies } from "../../client/src/protocol.ts";
import type { RequestType } from "../../src/protocol/requests.ts";
import type { ServerBodies } from "../../src/protocol/server-messages.ts";

/**
 * The SDK declares the wire types it reads (so that its .d.ts stands alone); these checks, made by
 * the typechecker, fail when a message the server sends no longer fits them.
 */

/** Every server message type, with its body, is one the SDK reads; a type that does not fit names itself. */
type Misfits = { [K in keyof ServerBodies]: K extends keyof SdkBodies ? (ServerBodies[K] extends SdkBodies[K] ? never : K) : K }[keyof ServerBodies];
const noMisfits: [Misfits] extends [never] ? true : Misfits = true;

/** The SDK sends exactly the server's request types. */
type SameRequests = [RequestType] extends [SdkRequestType] ? ([SdkRequestType] extends [RequestType] ? true : false) : false;
const sameRequests: SameRequests = true;

describe("the SDK's protocol types", () => {
  it("fit every server message and name every request type (checked when this file compiles)", () => {
    expect(noMisfits).toBe(true);
    expect(sameRequests).toBe(true);
  });

  it("expect a direct reply exactly for the requests that get one", () => {
    expect(Object.keys(REPLY_TYPES).sort()).toEqual(["challenge", "create_room", "discover", "join", "join_room", "match", "match_cancel", "ping", "refresh", "register", "room_info"]);
  });
});
