/**
 * Finds the exact text of a top-level member's value in a JSON object text, so that a payload can
 * be forwarded as it arrived instead of being serialized again. The text must already have passed
 * JSON.parse (it is well-formed). Like JSON.parse, the last occurrence of a duplicated key wins.
 * Returns undefined when the member is absent or its key is written with escapes (then JSON.parse
 * may see a key the scanner would not: callers fall back to serializing the parsed value).
 */
export function memberText(json: string, key: string): string | undefined {
  let i = skipSpace(json, 0);
  if (json.charCodeAt(i) !== OPEN_BRACE) return undefined;
  i = skipSpace(json, i + 1);
  let start = -1;
  let end = -1;
  while (i < json.length && json.charCodeAt(i) === QUOTE) {
    const keyEnd = stringEnd(json, i);
    if (keyEnd < 0) return undefined;
    const rawKey = json.slice(i + 1, keyEnd - 1);
    if (rawKey.includes("\\")) return undefined;
    i = skipSpace(json, keyEnd);
    if (json.charCodeAt(i) !== COLON) return undefined;
    i = skipSpace(json, i + 1);
    const valueStart = i;
    i = valueEnd(json, i);
    if (i < 0) return undefined;
    if (rawKey === key) {
      start = valueStart;
      end = i;
    }
    i = skipSpace(json, i);
    if (json.charCodeAt(i) === COMMA) i = skipSpace(json, i + 1);
  }
  return start < 0 ? undefined : json.slice(start, end);
}

const OPEN_BRACE = 123;
const CLOSE_BRACE = 125;
const OPEN_BRACKET = 91;
const CLOSE_BRACKET = 93;
const QUOTE = 34;
const BACKSLASH = 92;
const COLON = 58;
const COMMA = 44;

function skipSpace(json: string, i: number): number {
  for (let c = json.charCodeAt(i); c === 32 || c === 9 || c === 10 || c === 13; c = json.charCodeAt(++i));
  return i;
}

/** Index just past the string that opens at `i` (a quote). */
function stringEnd(json: string, i: number): number {
  for (let from = i + 1; ; ) {
    const quote = json.indexOf('"', from);
    if (quote < 0) return -1;
    let backslashes = 0;
    for (let k = quote - 1; json.charCodeAt(k) === BACKSLASH; k--) backslashes++;
    if (backslashes % 2 === 0) return quote + 1;
    from = quote + 1;
  }
}

/** Index just past the value that starts at `i`. */
function valueEnd(json: string, i: number): number {
  const first = json.charCodeAt(i);
  if (first === QUOTE) return stringEnd(json, i);
  if (first === OPEN_BRACE || first === OPEN_BRACKET) {
    let depth = 0;
    for (let k = i; k < json.length; k++) {
      const c = json.charCodeAt(k);
      if (c === QUOTE) {
        k = stringEnd(json, k) - 1;
        if (k < 0) return -1;
      } else if (c === OPEN_BRACE || c === OPEN_BRACKET) depth++;
      else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
        if (--depth === 0) return k + 1;
      }
    }
    return -1;
  }
  let k = i;
  for (let c = json.charCodeAt(k); k < json.length && c !== COMMA && c !== CLOSE_BRACE && c !== CLOSE_BRACKET && c !== 32 && c !== 9 && c !== 10 && c !== 13; c = json.charCodeAt(++k));
  return k;
}
