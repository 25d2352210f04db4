/**
 * The scopes one peer is in, with the app_type it joined each with: a flat, exactly sized array
 * of pairs (`[name, appType, name, appType, ...]`), replaced on every change, never changed in
 * place.
 *
 * Why not a Map: a store keeps one of these for every registered peer (a cluster keeps one per
 * peer in every worker's replica), and most peers are in one scope. A Map with one entry takes
 * about 200 bytes here (its table is allocated for four), the array of one pair 64, and no
 * scope at all shares one empty array. Lookups walk the pairs: a peer is in at most
 * max_scopes_per_peer scopes (64 by default), and whether it is in a given scope is asked of the
 * scope's member map instead.
 */
export type PeerScopes = readonly string[];

/** A peer in no scope: shared by all of them. */
export const NO_SCOPES: PeerScopes = Object.freeze([]);

/** How many scopes the peer is in. */
export const scopeCount = (scopes: PeerScopes): number => scopes.length / 2;

/** The app_type the peer joined scope `name` with; undefined when it is not in it. */
export function appTypeIn(scopes: PeerScopes, name: string): string | undefined {
  for (let i = 0; i < scopes.length; i += 2) if (scopes[i] === name) return scopes[i + 1];
  return undefined;
}

/** The list with scope `name` added (the peer is not in it yet). */
export function withScope(scopes: PeerScopes, name: string, appType: string): PeerScopes {
  return scopes.length === 0 ? [name, appType] : scopes.concat(name, appType);
}

/** The list without scope `name`. */
export function withoutScope(scopes: PeerScopes, name: string): PeerScopes {
  const kept: string[] = [];
  for (let i = 0; i < scopes.length; i += 2) if (scopes[i] !== name) kept.push(scopes[i] as string, scopes[i + 1] as string);
  return kept.length === 0 ? NO_SCOPES : kept;
}

/** The names of the scopes, in the order they were joined. */
export function scopeNames(scopes: PeerScopes): string[] {
  const names: string[] = [];
  for (let i = 0; i < scopes.length; i += 2) names.push(scopes[i] as string);
  return names;
}

/** The [name, appType] pairs, in the order they were joined (the snapshot's form). */
export function scopeEntries(scopes: PeerScopes): [string, string][] {
  const entries: [string, string][] = [];
  for (let i = 0; i < scopes.length; i += 2) entries.push([scopes[i] as string, scopes[i + 1] as string]);
  return entries;
}

/** The list of the given [name, appType] pairs. */
export function scopesOf(entries: readonly (readonly [string, string])[]): PeerScopes {
  return entries.length === 0 ? NO_SCOPES : entries.flat();
}
