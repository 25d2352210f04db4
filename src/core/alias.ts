import { hash } from "node:crypto";

const ADJECTIVES = [
  "able", "amber", "bold", "brave", "bright", "brisk", "calm", "clever", "cosmic", "crisp", "dark", "daring",
  "eager", "early", "fair", "fast", "fierce", "fond", "gentle", "glad", "golden", "grand", "happy", "hidden",
  "humble", "icy", "jolly", "keen", "kind", "lively", "lucky", "mellow", "mighty", "misty", "noble", "odd",
  "proud", "quick", "quiet", "rapid", "rare", "royal", "rusty", "shy", "silent", "silver", "sleek", "smart",
  "snowy", "solid", "spry", "steady", "stormy", "sunny", "swift", "tidy", "tiny", "vivid", "warm", "wild",
  "wise", "witty", "young", "zesty",
] as const;

const NOUNS = [
  "ant", "bat", "bear", "bee", "bison", "boar", "cat", "cobra", "crab", "crane", "crow", "deer", "dove",
  "eagle", "eel", "elk", "falcon", "ferret", "finch", "fox", "frog", "gecko", "goat", "hare", "hawk", "heron",
  "ibis", "jay", "koala", "lark", "lemur", "lion", "llama", "lynx", "mink", "mole", "moose", "moth", "newt",
  "otter", "owl", "panda", "puma", "quail", "raven", "robin", "seal", "shark", "sloth", "snail", "swan",
  "tiger", "toad", "trout", "viper", "wasp", "whale", "wolf", "wren", "yak", "zebra", "orca", "mantis", "stoat",
] as const;

/** How many `adjective-noun-NN` candidates a fingerprint gets before its long one. */
const SHORT_CANDIDATES = 10;

/**
 * Generated aliases for a fingerprint, in a fixed order: the same key usually gets the same alias,
 * and the store takes the first one that is free. First ten `adjective-noun-NN`: each 32 random
 * bytes yield five (six bytes each); the fingerprint is itself a SHA-256 digest, so its own bytes
 * give the first five at no cost, and ten cost one more digest (registration is hashing-bound
 * enough for that to show). With 100,000 peers holding a quarter of the 405,504 combinations, all
 * ten are taken about once in a million registrations, and far more often as a deployment grows
 * past that: the last candidate is the first one followed by 14 more hex digits of the
 * fingerprint (`brave-fox-42-3fa9c1d2e4b5a6`, at most 31 characters), which only a key sharing
 * 56 more bits of its fingerprint could hold.
 */
export function aliasCandidates(fingerprint: string): string[] {
  const candidates: string[] = [];
  for (let round = 0; candidates.length < SHORT_CANDIDATES; round++) {
    // Read as hex text (four digits a 16-bit word): no buffer per registration.
    const digest = round === 0 ? fingerprint : hash("sha256", `${fingerprint}:${round}`, "hex");
    for (let offset = 0; offset + 12 <= digest.length && candidates.length < SHORT_CANDIDATES; offset += 12) {
      const adjective = ADJECTIVES[wordAt(digest, offset) % ADJECTIVES.length];
      const noun = NOUNS[wordAt(digest, offset + 4) % NOUNS.length];
      const number = (wordAt(digest, offset + 8) % 99) + 1;
      candidates.push(`${adjective}-${noun}-${number < 10 ? "0" : ""}${number}`);
    }
  }
  // Its digits follow the twelve the first candidate was made of.
  candidates.push(`${candidates[0] as string}-${fingerprint.slice(12, 26)}`);
  return candidates;
}

/** The big-endian 16-bit word written as four hex digits at `offset`. */
const wordAt = (hex: string, offset: number): number => Number.parseInt(hex.slice(offset, offset + 4), 16);

/** Fingerprint of a public key: lowercase hex SHA-256 of its UTF-8 bytes. */
export const fingerprintOf = (publicKey: string): string => hash("sha256", publicKey, "hex");
