import type { Dialect, DialectDeps, DialectName } from "./dialect.ts";

/** Each dialect's constructor, by the name the `dialects` option uses. */
const FACTORIES: Partial<Record<DialectName, (deps: DialectDeps) => Dialect>> = {};

/** The dialects the configuration asks for, built over one core. */
export function createDialects(deps: DialectDeps): Dialect[] {
  const dialects: Dialect[] = [];
  for (const name of deps.config.dialects) {
    const factory = FACTORIES[name];
    if (factory !== undefined) dialects.push(factory(deps));
  }
  return dialects;
}
