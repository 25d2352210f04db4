import { describe, expect, it } from "vitest";
import { fingerprintOf } from "../../../src/core/alias.ts";
import { createMemoryRegistrationLimiter } from "../../../src/backends/registration-limiter.ts";
import type { AccessClaims, AccessTokenVerifier, TokenVerdict } from "../../../src/trust/access-tokens.ts";
import { CoreHarness, errorCode, settle } from "../../helpers/core-harness.ts";

const START = 1_700_000_000_000;
const claims = (overrides: Partial<AccessClaims> = {}): AccessClaims => ({ subject: undefined, namespaces: undefined, expiresAt: undefined, ...overrides });

/** A verifier that knows a fixed set of tokens; any other is refused with 401. */
function verifierOf(tokens: Record<string, AccessClaims>): AccessTokenVerifier {
  return {
    verify: (token): Promise<TokenVerdict> => {
      const known = token === undefined ? undefined : tokens[token];
      return Promise.resolve(known === undefined ? { ok: false, status: 401, reason: "invalid access token" } : { ok: true, claims: known });
    },
  };
}

describe("access token expiry", () => {
  it("closes the connection at exp with error 401 and close 4003", async () => {
    const core = new CoreHarness();
    const peer = core.connect(claims({ expiresAt: START + 5_000 }));
    expect((await core.request(peer, "register", { payload: { public_key: "key-a" } })).type).toBe("registered");
    core.clock.advance(4_999);
    expect(peer.connection.closeCode).toBeUndefined();
    core.clock.advance(1);
    expect(peer.connection.closeCode).toBe(4003);
    expect(peer.connection.of("error").at(-1)?.body).toEqual({ payload: { code: 401, message: "access token expired", close_code: 4003 } });
  });

  it("a refresh with a newer token moves the close to the new exp, and answers ok", async () => {
    const core = new CoreHarness({ accessTokens: verifierOf({ newer: claims({ expiresAt: START + 20_000 }) }) });
    const peer = core.connect(claims({ expiresAt: START + 5_000 }));
    await core.request(peer, "register", { payload: { public_key: "key-a" } });
    expect(await core.request(peer, "refresh", { payload: { token: "newer" } })).toEqual({ type: "ok", body: { payload: { ref: "refresh" } } });
    core.clock.advance(10_000);
    expect(peer.connection.closeCode).toBeUndefined();
    core.clock.advance(10_000);
    expect(peer.connection.closeCode).toBe(4003);
  });

  it("a bad refresh token gets 401 and changes nothing: the first expiry stands", async () => {
    const core = new CoreHarness({ accessTokens: verifierOf({}) });
    const peer = core.connect(claims({ expiresAt: START + 5_000 }));
    await core.request(peer, "register", { payload: { public_key: "key-a" } });
    expect(errorCode(await core.request(peer, "refresh", { payload: { token: "forged" } }))).toBe(401);
    core.clock.advance(5_000);
    expect(peer.connection.closeCode).toBe(4003);
  });

  it("a refresh may come before register; one without a token is 400; without access tokens refresh is 400", async () => {
    const core = new CoreHarness({ accessTokens: verifierOf({ newer: claims() }) });
    const peer = core.connect(claims({ expiresAt: START + 5_000 }));
    expect((await core.request(peer, "refresh", { payload: { token: "newer" } })).type).toBe("ok");
    expect(errorCode(await core.request(peer, "refresh", { payload: {} }))).toBe(400);
    core.clock.advance(60_000);
    expect(peer.connection.closeCode).not.toBe(4003);
    const plain = new CoreHarness();
    const other = plain.connect();
    expect(errorCode(await plain.request(other, "refresh", { payload: { token: "anything" } }))).toBe(400);
  });

  it("an exp beyond the longest timer still closes at exp, not at once", async () => {
    const core = new CoreHarness();
    const far = START + 40 * 86_400_000;
    const peer = core.connect(claims({ expiresAt: far }));
    await core.request(peer, "register", { payload: { public_key: "key-a" } });
    core.clock.advance(39 * 86_400_000);
    expect(peer.connection.closeCode).toBeUndefined();
    core.clock.advance(86_400_000);
    expect(peer.connection.closeCode).toBe(4003);
  });

  it("a closed connection's expiry timer is cancelled", async () => {
    const core = new CoreHarness();
    const peer = core.connect(claims({ expiresAt: START + 5_000 }));
    await core.hub.close(peer.session);
    expect(core.clock.pending).toBe(0);
  });
});

describe("access token subject", () => {
  it("the connection may register only the key of its sub (403 otherwise, nothing registered)", async () => {
    const core = new CoreHarness();
    const peer = core.connect(claims({ subject: fingerprintOf("key-a") }));
    expect(errorCode(await core.request(peer, "register", { payload: { public_key: "key-b" } }))).toBe(403);
    expect(await core.store.resolvePeer(fingerprintOf("key-b"))).toBeUndefined();
    expect((await core.request(peer, "register", { payload: { public_key: "key-a" } })).type).toBe("registered");
  });

  it("a refresh must keep the sub of the first token, and may not name another key than the registered one", async () => {
    const core = new CoreHarness({
      accessTokens: verifierOf({ same: claims({ subject: fingerprintOf("key-a") }), other: claims({ subject: fingerprintOf("key-b") }), none: claims() }),
    });
    const peer = core.connect(claims({ subject: fingerprintOf("key-a"), expiresAt: START + 5_000 }));
    await core.request(peer, "register", { payload: { public_key: "key-a" } });
    expect(errorCode(await core.request(peer, "refresh", { payload: { token: "other" } }))).toBe(403);
    expect(errorCode(await core.request(peer, "refresh", { payload: { token: "none" } }))).toBe(403);
    expect((await core.request(peer, "refresh", { payload: { token: "same" } })).type).toBe("ok");

    const free = core.connect(claims());
    await core.request(free, "register", { payload: { public_key: "key-c" } });
    expect(errorCode(await core.request(free, "refresh", { payload: { token: "other" } }))).toBe(403);
  });
});

describe("access token namespaces", () => {
  it("join and match only in the namespaces granted (a trailing * is a prefix); rooms are not bound by it", async () => {
    const core = new CoreHarness();
    const peer = core.connect(claims({ namespaces: ["lobby", "game-*"] }));
    await core.request(peer, "register", { payload: { public_key: "key-a" } });
    expect((await core.request(peer, "join", { payload: { namespace: "lobby" } })).type).toBe("peer_list");
    expect((await core.request(peer, "join", { payload: { namespace: "game-7" } })).type).toBe("peer_list");
    expect(errorCode(await core.request(peer, "join", { payload: { namespace: "secret" } }))).toBe(403);
    expect((await core.store.listMembers("secret", null, 10)).total).toBe(0);
    expect(errorCode(await core.request(peer, "match", { payload: { namespace: "secret", group_size: 2 } }))).toBe(403);
    expect((await core.request(peer, "match", { payload: { namespace: "lobby", group_size: 2 } })).type).toBe("match");
    expect((await core.request(peer, "create_room", { payload: { room_id: "den" } })).type).toBe("room_created");
  });
});

describe("registrations per address", () => {
  it("a client address that rotates keys runs out of registrations: 429, whatever the key", async () => {
    const core = new CoreHarness({ addressRegistrationLimiter: createMemoryRegistrationLimiter({ perSec: 1, burst: 3 }, "regip") });
    const replies = [];
    for (let i = 0; i < 4; i++) {
      const peer = core.connect();
      peer.connection.remoteAddress = "203.0.113.9";
      replies.push(await core.request(peer, "register", { payload: { public_key: `key-${i}` } }));
    }
    expect(replies.map((reply) => reply.type)).toEqual(["registered", "registered", "registered", "error"]);
    expect(replies[3]?.body).toMatchObject({ payload: { code: 429, message: "too many registrations from this address" } });
    const elsewhere = core.connect();
    elsewhere.connection.remoteAddress = "198.51.100.1";
    expect((await core.request(elsewhere, "register", { payload: { public_key: "key-9" } })).type).toBe("registered");
    await settle();
  });
});
