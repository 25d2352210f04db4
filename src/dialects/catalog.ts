import type { Dialect, DialectDeps, DialectName } from "./dialect.ts";
import { createPigeonDialect } from "./pigeon/pigeon.ts";
import { createP2pDialect } from "./p2p/p2p.ts";
import { createRandomChatDialect } from "./randomchat/randomchat.ts";

/** Each dialect's constructor, by the name the `dialects` option uses. */
const FACTORIES: Readonly<Record<DialectName, (deps: DialectDeps) => Dialect>> = {
  pigeon: createPigeonDialect,
  p2p: createP2pDialect,
  randomchat: createRandomChatDialect,
};

/** The dialects the configuration asks for, built over one core. */
export function createDialects(deps: DialectDeps): Dialect[] {
  return deps.config.dialects.map((name) => FACTORIES[name](deps));
}
