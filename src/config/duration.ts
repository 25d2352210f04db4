const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

/**
 * Parses a duration given as milliseconds (a non-negative number) or as a Go-style
 * string such as "10s", "1m30s", "250ms". Returns milliseconds, or undefined when the
 * value is not a duration.
 */
export function parseDurationMs(value: unknown): number | undefined {
  if (typeof value === "number") {
    return Number.isFinite(value) && value >= 0 ? value : undefined;
  }
  if (typeof value !== "string" || value.length === 0) return undefined;
  if (/^\d+(\.\d+)?$/.test(value)) return Number(value);
  const part = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
  let total = 0;
  let consumed = 0;
  for (let match = part.exec(value); match !== null; match = part.exec(value)) {
    total += Number(match[1]) * (UNIT_MS[match[2] ?? ""] ?? Number.NaN);
    consumed = part.lastIndex;
  }
  return consumed === value.length && Number.isFinite(total) ? total : undefined;
}
