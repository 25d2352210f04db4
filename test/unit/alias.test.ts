import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { MemoryStore } from "../../src/backends/memory/memory-store.ts";
import { aliasCandidates, fingerprintOf } from "../../src/core/alias.ts";

const fingerprints = Array.from({ length: 200 }, (_, index) => fingerprintOf(`key-${index}`));

describe("fingerprintOf", () => {
  it("is the lowercase hex SHA-256 of the key's UTF-8 bytes", () => {
    expect(fingerprintOf("héllo")).toBe(createHash("sha256").update(Buffer.from("héllo", "utf8")).digest("hex"));
    expect(fingerprintOf("key")).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe("aliasCandidates", () => {
  it("gives ten adjective-noun-NN candidates, then the first one lengthened by 14 hex digits of the key, the same ones every time", () => {
    for (const fingerprint of fingerprints) {
      const candidates = aliasCandidates(fingerprint);
      expect(candidates).toHaveLength(11);
      for (const alias of candidates.slice(0, 10)) expect(alias).toMatch(/^[a-z]+-[a-z]+-(0[1-9]|[1-9][0-9])$/);
      expect(candidates[10]).toBe(`${candidates[0]}-${fingerprint.slice(12, 26)}`);
      // Within what a requested alias may be: 1 to 32 characters of [A-Za-z0-9_-].
      for (const alias of candidates) expect(alias).toMatch(/^[A-Za-z0-9_-]{1,32}$/);
      expect(aliasCandidates(fingerprint)).toEqual(candidates);
    }
  });

  it("gives a key the aliases it has always had (a returning peer keeps its name)", () => {
    expect(aliasCandidates(fingerprintOf("key-0"))).toEqual([
      "rusty-orca-73", "snowy-frog-89", "crisp-mole-88", "humble-eel-16", "shy-frog-52",
      "warm-mole-52", "happy-whale-55", "fierce-fox-41", "smart-moth-79", "rare-gecko-51",
      `rusty-orca-73-${fingerprintOf("key-0").slice(12, 26)}`,
    ]);
  });

  it("still names every key when the short aliases are all held: a crowd past the 405,504 combinations registers", async () => {
    const store = new MemoryStore();
    // Every short candidate of the newcomer is held by someone else already.
    const newcomer = fingerprintOf("newcomer");
    const held = aliasCandidates(newcomer).slice(0, 10);
    for (const [index, alias] of held.entries()) {
      await store.registerPeer({ fingerprint: fingerprintOf(`holder-${index}`), connectionId: `c${index}`, nodeId: "n", alias, aliasCandidates: [], meta: {}, verified: false });
    }
    const registration = await store.registerPeer({ fingerprint: newcomer, connectionId: "new", nodeId: "n", alias: undefined, aliasCandidates: aliasCandidates(newcomer), meta: {}, verified: false });
    expect(registration.alias).toBe(`${held[0]}-${newcomer.slice(12, 26)}`);
  });

  it("spreads keys over many aliases: different keys rarely share a first choice, and a key's own candidates rarely repeat", () => {
    const firsts = new Set(fingerprints.map((fingerprint) => aliasCandidates(fingerprint)[0]));
    expect(firsts.size).toBeGreaterThan(195);
    for (const fingerprint of fingerprints) expect(new Set(aliasCandidates(fingerprint)).size).toBeGreaterThanOrEqual(9);
  });

  it("can never look like a fingerprint", () => {
    for (const fingerprint of fingerprints) for (const alias of aliasCandidates(fingerprint)) expect(alias).not.toMatch(/^[0-9a-f]{64}$/);
  });
});
