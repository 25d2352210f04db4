/**
 * Nesting bound for client data. Every message is checked once at the edge, before anything is
 * stored, forwarded or serialized: JSON.stringify, the cluster IPC's structured clone and
 * socket.io-parser's encoder all recurse, and a 4 KB frame can nest two thousand levels, enough
 * to overflow their stack in the process that serializes it (another worker, or the cluster
 * primary that serves every worker).
 */

/**
 * True when `value` nests containers deeper than `limit` levels: a scalar has depth 0, `{}` and
 * `[]` depth 1, `{"a":[1]}` depth 2. Recursion is bounded by `limit`, so this never overflows.
 */
export function nestsDeeperThan(value: unknown, limit: number): boolean {
  if (typeof value !== "object" || value === null) return false;
  if (limit <= 0) return true;
  const below = limit - 1;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      if (nestsDeeperThan(value[i], below)) return true;
    }
    return false;
  }
  const fields = value as Record<string, unknown>;
  for (const key in fields) {
    if (nestsDeeperThan(fields[key], below)) return true;
  }
  return false;
}
