import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { aliasCandidates, fingerprintOf } from "../../src/core/alias.ts";

const fingerprints = Array.from({ length: 200 }, (_, index) => fingerprintOf(`key-${index}`));

describe("fingerprintOf", () => {
  it("is the lowercase hex SHA-256 of the key's UTF-8 bytes", () => {
    expect(fingerprintOf("héllo")).toBe(createHash("sha256").update(Buffer.from("héllo", "utf8")).digest("hex"));
    expect(fingerprintOf("key")).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe("aliasCandidates", () => {
  it("gives ten adjective-noun-NN candidates, the same ones for the same key every time", () => {
    for (const fingerprint of fingerprints) {
      const candidates = aliasCandidates(fingerprint);
      expect(candidates).toHaveLength(10);
      for (const alias of candidates) expect(alias).toMatch(/^[a-z]+-[a-z]+-(0[1-9]|[1-9][0-9])$/);
      expect(aliasCandidates(fingerprint)).toEqual(candidates);
    }
  });

  it("gives a key the aliases it has always had (a returning peer keeps its name)", () => {
    expect(aliasCandidates(fingerprintOf("key-0"))).toEqual([
      "rusty-orca-73", "snowy-frog-89", "crisp-mole-88", "humble-eel-16", "shy-frog-52",
      "warm-mole-52", "happy-whale-55", "fierce-fox-41", "smart-moth-79", "rare-gecko-51",
    ]);
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
