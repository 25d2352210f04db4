/**
 * JSON text assembled from parts, for the fuzz suite. A frame is described as a small tree that
 * fast-check can generate and shrink; its text is written without recursing into the nesting, so
 * that values nested twenty thousand levels deep cost one `repeat` (JSON.stringify would overflow
 * the stack at a few thousand levels, in this process as in the server).
 */

/** Strings a frame takes from the run it is sent in, so that runs never collide with each other. */
export type Ref =
  /** The lane's namespace, which the lane's witness peer is a member of. */
  | "shared"
  /** A name that only this run uses: `<token><suffix>`. */
  | "own"
  /** A public key that only this run uses (another run's key would replace that run's connection). */
  | "key"
  /** The witness peer's fingerprint, as sent by the server (lowercase). */
  | "witnessFp"
  /** The witness peer's fingerprint in uppercase hex (the server resolves it case-insensitively). */
  | "witnessFpUpper"
  | "witnessAlias"
  /** The fingerprint of the key this run registers with before its batch (when it does). */
  | "selfFp";

export type Json =
  | { readonly j: "lit"; readonly value: null | boolean | number | string }
  /** Exact JSON text, for what JSON.stringify cannot write: `-0`, `1e400`, 30-digit integers. */
  | { readonly j: "raw"; readonly text: string }
  | { readonly j: "arr"; readonly items: readonly Json[] }
  | { readonly j: "obj"; readonly entries: readonly Entry[] }
  /** `open` repeated `units` times, the leaf, then `close` repeated as often, e.g. `{"a":` / `}`. */
  | { readonly j: "deep"; readonly open: string; readonly close: string; readonly units: number; readonly leaf: Json }
  | { readonly j: "ref"; readonly ref: Ref; readonly suffix: string };

export type Entry = readonly [key: string, value: Json];

/** What a frame's references resolve to in the run that sends it. */
export interface RunContext {
  readonly shared: string;
  readonly token: string;
  readonly witnessFp: string;
  readonly witnessAlias: string;
  readonly selfFp: string;
}

export const lit = (value: null | boolean | number | string): Json => ({ j: "lit", value });
export const raw = (text: string): Json => ({ j: "raw", text });
export const arr = (items: readonly Json[]): Json => ({ j: "arr", items });
export const obj = (entries: readonly Entry[]): Json => ({ j: "obj", entries });
export const ref = (to: Ref, suffix = ""): Json => ({ j: "ref", ref: to, suffix });

export function resolveRef(to: Ref, suffix: string, context: RunContext): string {
  switch (to) {
    case "shared":
      return context.shared;
    case "own":
      return `${context.token}${suffix}`;
    case "key":
      return `${context.token}-key-${suffix}`;
    case "witnessFp":
      return context.witnessFp;
    case "witnessFpUpper":
      return context.witnessFp.toUpperCase();
    case "witnessAlias":
      return context.witnessAlias;
    case "selfFp":
      return context.selfFp;
  }
}

/** The JSON text of `value` in `context`. */
export function write(value: Json, context: RunContext): string {
  switch (value.j) {
    case "lit":
      return JSON.stringify(value.value);
    case "raw":
      return value.text;
    case "arr":
      return `[${value.items.map((item) => write(item, context)).join(",")}]`;
    case "obj":
      return writeObject(value.entries, context);
    case "deep":
      return value.open.repeat(value.units) + write(value.leaf, context) + value.close.repeat(value.units);
    case "ref":
      return JSON.stringify(resolveRef(value.ref, value.suffix, context));
  }
}

export function writeObject(entries: readonly Entry[], context: RunContext): string {
  return `{${entries.map(([key, value]) => `${JSON.stringify(key)}:${write(value, context)}`).join(",")}}`;
}

/** A short, readable form of `value` for failure reports: deep runs and long strings abbreviated. */
export function show(value: Json): string {
  switch (value.j) {
    case "lit":
      return typeof value.value === "string" && value.value.length > 60 ? `${JSON.stringify(value.value.slice(0, 24))}…(${value.value.length} chars)` : JSON.stringify(value.value);
    case "raw":
      return value.text.length > 60 ? `${value.text.slice(0, 24)}…(${value.text.length} chars)` : value.text;
    case "arr":
      return `[${value.items.map(show).join(",")}]`;
    case "obj":
      return showObject(value.entries);
    case "deep":
      return `«${value.open}»×${value.units} ${show(value.leaf)} «${value.close}»×${value.units}`;
    case "ref":
      return value.suffix.length > 24 ? `@${value.ref}(${value.suffix.slice(0, 8)}…${value.suffix.length} chars)` : `@${value.ref}(${value.suffix})`;
  }
}

export const showObject = (entries: readonly Entry[]): string => `{${entries.map(([key, value]) => `${JSON.stringify(key)}:${show(value)}`).join(",")}}`;

/** Nesting depth of a JSON text, counted without recursion: a scalar is 0, `{}` 1, `{"a":[]}` 2. Strings are skipped. */
export function textDepth(text: string): number {
  let depth = 0;
  let max = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 34 /* " */) {
      for (i++; i < text.length; i++) {
        const d = text.charCodeAt(i);
        if (d === 92 /* \ */) i++;
        else if (d === 34) break;
      }
    } else if (c === 123 || c === 91) {
      if (++depth > max) max = depth;
    } else if (c === 125 || c === 93) depth--;
  }
  return max;
}

/** Parses JSON (V8's parser does not recurse, so any depth is fine); undefined when it is not JSON. */
export function tryParse(text: string): { value: unknown } | undefined {
  try {
    return { value: JSON.parse(text) as unknown };
  } catch {
    return undefined;
  }
}

export const isPlainObject = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);
