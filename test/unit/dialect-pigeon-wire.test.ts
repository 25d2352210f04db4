import type { IncomingMessage } from "node:http";
import { describe, expect, it } from "vitest";
import { pigeonUpgradeCheck } from "../../src/dialects/pigeon/upgrade.ts";
import { announceMeta, isNetworkName, isPeerId, networkOf, peerIdOf, readMeta, scopeOf } from "../../src/dialects/pigeon/wire.ts";

/** The PeerPigeon dialect's pure rules: names, announce meta, and the upgrade check. */

const request = (url: string, headers: Record<string, string> = {}): IncomingMessage => ({ url, headers }) as unknown as IncomingMessage;
const PEER = "0123456789abcdefABCDEF0123456789abcdef01";

describe("PeerPigeon names", () => {
  it("a peerId is exactly 40 hex characters of either case", () => {
    expect(isPeerId(PEER)).toBe(true);
    for (const bad of ["", PEER.slice(1), `${PEER}0`, `${PEER.slice(1)}g`, ` ${PEER.slice(1)}`, 42, null]) expect(isPeerId(bad)).toBe(false);
  });

  it.each(["global", "pigeonhub-mesh", "my_app.v2:eu~1@x+y", "сеть", "网络", "n".repeat(64)])("accepts the network name %j", (name) => {
    expect(isNetworkName(name)).toBe(true);
  });

  it.each(["", "n".repeat(65), "a b", "a/b", "a\u0000b", "tab\t", "emoji🙂", "semi;colon", 7, null])("refuses the network name %j", (name) => {
    expect(isNetworkName(name)).toBe(false);
  });

  it("identities and scopes carry prefixes no native name can hold, and read back", () => {
    expect(scopeOf("global")).toBe("pigeon/global");
    expect(networkOf("pigeon/global")).toBe("global");
    expect(networkOf("global")).toBeUndefined();
    expect(peerIdOf(`pigeon:${PEER}`)).toBe(PEER);
    expect(peerIdOf(`p2p:${PEER}`)).toBeUndefined();
  });
});

describe("PeerPigeon announce meta", () => {
  it("keeps object data, and announces anything else or anything over 4 KB as {}", () => {
    expect(announceMeta({ info: "x" }, true, 5)).toEqual({ data: { info: "x" }, isHub: true, at: 5 });
    expect(announceMeta("text", false, 5).data).toEqual({});
    expect(announceMeta([1, 2], false, 5).data).toEqual({});
    expect(announceMeta(null, false, 5).data).toEqual({});
    expect(announceMeta({ blob: "x".repeat(4_100) }, false, 5).data).toEqual({});
    const fits = announceMeta({ blob: "x".repeat(3_900) }, false, 5);
    expect(Buffer.byteLength(JSON.stringify(fits))).toBeLessThanOrEqual(4_096);
    expect(fits.data).toEqual({ blob: "x".repeat(3_900) });
  });

  it("reads back any meta, a peer that never announced included", () => {
    expect(readMeta({})).toEqual({ data: {}, isHub: false, at: 0 });
    expect(readMeta({ data: [1], isHub: "yes", at: "now" })).toEqual({ data: {}, isHub: false, at: 0 });
    expect(readMeta({ data: { a: 1 }, isHub: true, at: 9 })).toEqual({ data: { a: 1 }, isHub: true, at: 9 });
  });
});

describe("PeerPigeon upgrade check", () => {
  it("without a token, admits any valid peerId and refuses others with 403", () => {
    const check = pigeonUpgradeCheck("");
    expect(check(request(`/pigeon?peerId=${PEER}`))).toBeUndefined();
    expect(check(request("/pigeon"))?.status).toBe(403);
    expect(check(request(`/pigeon?peerId=${PEER}x`))?.status).toBe(403);
  });

  it("with a token, wants it as a Bearer header or ?token= (401 first), then a valid peerId (403)", () => {
    const check = pigeonUpgradeCheck("s3cret");
    expect(check(request(`/pigeon?peerId=${PEER}`))?.status).toBe(401);
    expect(check(request("/pigeon?peerId=bad"))?.status).toBe(401);
    expect(check(request(`/pigeon?peerId=${PEER}&token=s3cre`))?.status).toBe(401);
    expect(check(request(`/pigeon?peerId=${PEER}`, { authorization: "s3cret" }))?.status).toBe(401);
    expect(check(request(`/pigeon?peerId=${PEER}`, { authorization: "Basic s3cret" }))?.status).toBe(401);
    expect(check(request(`/pigeon?peerId=${PEER}`, { authorization: "Bearer s3cret" }))).toBeUndefined();
    expect(check(request(`/pigeon?peerId=${PEER}&token=s3cret`))).toBeUndefined();
    // A wrong header does not spoil a right query token, nor the other way round.
    expect(check(request(`/pigeon?peerId=${PEER}&token=s3cret`, { authorization: "Bearer nope" }))).toBeUndefined();
    expect(check(request(`/pigeon?peerId=${PEER}&token=nope`, { authorization: "Bearer s3cret" }))).toBeUndefined();
    expect(check(request("/pigeon?peerId=bad&token=s3cret"))?.status).toBe(403);
  });
});
