import { describe, expect, it } from "vitest";
import { fingerprintOf } from "../../../src/core/alias.ts";
import { CHALLENGE_TTL_MS } from "../../../src/core/challenges.ts";
import { CoreHarness, errorCode, type Received } from "../../helpers/core-harness.ts";
import { makeKey, type TestKey } from "../../helpers/key-proof.ts";

type Opened = ReturnType<CoreHarness["connect"]>;

const nonceOf = (reply: Received): string => (reply.body["payload"] as { nonce: string }).nonce;

async function challenge(core: CoreHarness, peer: Opened): Promise<string> {
  const reply = await core.request(peer, "challenge");
  expect(reply.type, JSON.stringify(reply)).toBe("challenge");
  return nonceOf(reply);
}

/** A register of `key` signed over `nonce`. */
async function signedRegister(core: CoreHarness, peer: Opened, key: TestKey, nonce: string): Promise<Received> {
  return core.request(peer, "register", { payload: { public_key: key.publicKey, signature: await key.sign(nonce) } });
}

/** challenge, then a register signed over its nonce. */
async function proven(core: CoreHarness, peer: Opened, key: TestKey): Promise<Received> {
  return signedRegister(core, peer, key, await challenge(core, peer));
}

describe("proof of key possession in the core (key_proof optional)", () => {
  it("challenge gives base64url of 32 random bytes; a register signed over it is verified, in the reply and in member lists", async () => {
    const core = new CoreHarness();
    const key = await makeKey("p256-raw-p1363");
    const peer = core.connect();
    const nonce = await challenge(core, peer);
    expect(nonce).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(nonce).not.toBe(await challenge(core, core.connect()));
    const reply = await signedRegister(core, peer, key, nonce);
    const fingerprint = fingerprintOf(key.publicKey);
    expect(reply).toMatchObject({ type: "registered", body: { from: fingerprint, payload: { fingerprint, verified: true } } });
    expect(peer.session.verified).toBe(true);
    await core.request(peer, "join", { payload: { namespace: "lobby" } });
    const plain = await core.peer("plain-key", "lobby");
    expect(plain.connection.of("peer_list").at(-1)?.body).toMatchObject({
      payload: { peers: [{ fingerprint, verified: true }, { fingerprint: plain.fingerprint, verified: false }] },
    });
    expect(peer.connection.of("peer_joined").at(-1)?.body).toMatchObject({ payload: { fingerprint: plain.fingerprint, verified: false } });
  });

  it("an unsigned register works as before, unverified", async () => {
    const core = new CoreHarness();
    const peer = core.connect();
    const reply = await core.request(peer, "register", { payload: { public_key: "any-identifier" } });
    expect(reply.body["payload"]).toMatchObject({ verified: false });
  });

  it("a nonce lasts 60 s: signed just before, verified; at 60 s, 401 and the connection may ask again", async () => {
    // pong_wait above the nonce's life, so the register timeout does not close the connections first.
    const core = new CoreHarness({ config: { pong_wait: "2m" } });
    const key = await makeKey("ed25519-raw");
    const late = core.connect();
    const expired = await challenge(core, late);
    core.clock.advance(CHALLENGE_TTL_MS);
    expect(errorCode(await signedRegister(core, late, key, expired))).toBe(401);
    expect(late.connection.closeCode).toBeUndefined();
    expect(await core.store.resolvePeer(fingerprintOf(key.publicKey))).toBeUndefined();
    expect((await proven(core, late, key)).body["payload"]).toMatchObject({ verified: true });

    const onTime = core.connect();
    const nonce = await challenge(core, onTime);
    core.clock.advance(CHALLENGE_TTL_MS - 1);
    expect((await signedRegister(core, onTime, await makeKey("ed25519-raw"), nonce)).type).toBe("registered");
  });

  it("a nonce serves one signed register, verified or not: it cannot be replayed", async () => {
    const core = new CoreHarness();
    const key = await makeKey("ed25519-spki");
    const peer = core.connect();
    const nonce = await challenge(core, peer);
    // A bad signature (another key's) takes the nonce; the right signature over it comes too late.
    const forged = await (await makeKey("ed25519-spki")).sign(nonce);
    expect(errorCode(await core.request(peer, "register", { payload: { public_key: key.publicKey, signature: forged } }))).toBe(401);
    expect(errorCode(await core.request(peer, "register", { payload: { public_key: key.publicKey, signature: await key.sign(nonce) } }))).toBe(401);
    // A verified register's nonce is gone with it: a second connection cannot reuse the signature.
    const fresh = await challenge(core, peer);
    const signature = await key.sign(fresh);
    expect((await core.request(peer, "register", { payload: { public_key: key.publicKey, signature } })).type).toBe("registered");
    const thief = core.connect();
    await challenge(core, thief);
    expect(errorCode(await core.request(thief, "register", { payload: { public_key: key.publicKey, signature } }))).toBe(401);
  });

  it("a nonce belongs to its connection; asking again replaces it", async () => {
    const core = new CoreHarness();
    const key = await makeKey("p256-spki-der");
    const owner = core.connect();
    const other = core.connect();
    const foreign = await challenge(core, owner);
    await challenge(core, other);
    expect(errorCode(await signedRegister(core, other, key, foreign))).toBe(401);
    const first = await challenge(core, owner);
    const second = await challenge(core, owner);
    expect(errorCode(await signedRegister(core, owner, key, first))).toBe(401);
    expect(errorCode(await signedRegister(core, owner, key, second))).toBe(401); // the failure above took it
    expect((await proven(core, owner, key)).type).toBe("registered");
  });

  it("a signature with a public_key that is no accepted key is 401, and a bad signature text 400", async () => {
    const core = new CoreHarness();
    const peer = core.connect();
    await challenge(core, peer);
    expect(errorCode(await core.request(peer, "register", { payload: { public_key: "alice-public-key", signature: "AAAA" } }))).toBe(401);
    expect(errorCode(await core.request(peer, "register", { payload: { public_key: "k", signature: "not base64!" } }))).toBe(400);
    expect(errorCode(await core.request(peer, "register", { payload: { public_key: "k", signature: "A".repeat(257) } }))).toBe(400);
    expect(errorCode(await core.request(peer, "register", { payload: { public_key: "k", signature: 5 } }))).toBe(400);
  });

  it("challenge is for a connection that has not registered yet", async () => {
    const core = new CoreHarness();
    const peer = await core.peer("key-a");
    expect(errorCode(await core.request(peer, "challenge"))).toBe(400);
  });

  it("a verified holder is replaced only by another proven register; a proven register replaces an unverified holder", async () => {
    const core = new CoreHarness();
    const key = await makeKey("p256-raw-p1363");
    const fingerprint = fingerprintOf(key.publicKey);
    const unverified = core.connect();
    await core.request(unverified, "register", { payload: { public_key: key.publicKey } });
    const holder = core.connect();
    expect((await proven(core, holder, key)).body["payload"]).toMatchObject({ verified: true });
    expect(unverified.connection.closeCode).toBe(4001);

    const intruder = core.connect();
    expect(errorCode(await core.request(intruder, "register", { payload: { public_key: key.publicKey } }))).toBe(409);
    expect(holder.connection.closeCode).toBeUndefined();
    expect(await core.store.resolvePeer(fingerprint)).toMatchObject({ connectionId: holder.connection.id });

    const successor = core.connect();
    expect((await proven(core, successor, key)).type).toBe("registered");
    expect(holder.connection.closeCode).toBe(4001);
    expect(await core.store.resolvePeer(fingerprint)).toMatchObject({ connectionId: successor.connection.id });
  });
});

describe("key_proof required", () => {
  it("an unsigned register is 401 and the connection stays to sign one", async () => {
    const core = new CoreHarness({ config: { key_proof: "required" } });
    const key = await makeKey("ed25519-raw");
    const peer = core.connect();
    expect(errorCode(await core.request(peer, "register", { payload: { public_key: key.publicKey } }))).toBe(401);
    expect(peer.connection.closeCode).toBeUndefined();
    expect((await proven(core, peer, key)).body["payload"]).toMatchObject({ verified: true });
  });

  it("a dialect identity registers unsigned and unverified", async () => {
    const core = new CoreHarness({ config: { key_proof: "required" } });
    const peer = core.connect();
    const reply = await core.submit(peer, { type: "register", payload: { publicKey: "", alias: undefined, meta: {}, identity: "pigeon:abc" } });
    expect(reply).toMatchObject({ type: "registered", body: { payload: { fingerprint: "pigeon:abc", verified: false } } });
  });
});

describe("key_proof off", () => {
  it("challenge is 400 and a signed register 401 (no nonce was issued); unsigned registers work", async () => {
    const core = new CoreHarness({ config: { key_proof: "off" } });
    const key = await makeKey("p256-raw-p1363");
    const peer = core.connect();
    expect(errorCode(await core.request(peer, "challenge"))).toBe(400);
    expect(errorCode(await core.request(peer, "register", { payload: { public_key: key.publicKey, signature: await key.sign("x") } }))).toBe(401);
    expect((await core.request(peer, "register", { payload: { public_key: key.publicKey } })).body["payload"]).toMatchObject({ verified: false });
  });
});
