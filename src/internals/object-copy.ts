/** Omit over each member of a union (a plain Omit merges the members into one type). */
type OmitEach<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/**
 * `{ ...object, ...fields }` without V8's slow path: in Node 20 an object literal that spreads an
 * object and then adds properties costs about a microsecond (the runtime, not the inline cache);
 * copying with Object.assign costs a tenth of that. For paths that run per message or per
 * registration; elsewhere the spread reads better.
 */
export function withFields<T extends object, F extends object>(object: T, fields: F): OmitEach<T, keyof F> & F {
  return Object.assign({}, object, fields) as unknown as OmitEach<T, keyof F> & F;
}
