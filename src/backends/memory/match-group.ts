/**
 * Picks the waiting tickets that complete a group with a newcomer's: first come, first served,
 * each compatible with the newcomer and with every ticket chosen before it, in both directions (a
 * ticket is incompatible with the fingerprints its avoid list names; see MatchTicket.avoid).
 * Incompatible tickets are passed over and keep their place. Pure, so the store decides the group
 * before it changes anything.
 *
 * `waiting` is the queue, oldest first; the newcomer's own earlier ticket in it never counts.
 * Returns the chosen fingerprints oldest first, or undefined when fewer than `needed` fit.
 */
export function pickGroup(
  newcomer: string,
  avoid: readonly string[],
  needed: number,
  waiting: Iterable<string>,
  avoidOf: (fingerprint: string) => readonly string[],
): string[] | undefined {
  const chosen: string[] = [];
  if (needed <= 0) return chosen;
  const chosenAvoid: (readonly string[])[] = [];
  for (const candidate of waiting) {
    if (candidate === newcomer || avoid.includes(candidate)) continue;
    const own = avoidOf(candidate);
    if (own.includes(newcomer)) continue;
    if (chosen.some((other, index) => own.includes(other) || chosenAvoid[index]?.includes(candidate) === true)) continue;
    chosen.push(candidate);
    chosenAvoid.push(own);
    if (chosen.length === needed) return chosen;
  }
  return undefined;
}
