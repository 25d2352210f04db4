/**
 * Builds the SDK into client/dist (`npm run build:client`):
 * - peer-server.js: one ES module for browsers, socket.io-client included, which the server
 *   serves at /client/peer-server.js;
 * - index.js: the ES module for Node and bundlers, with its dependencies left as imports;
 * - *.d.ts: the types, from tsc (which also checks that the SDK needs nothing but the DOM's and
 *   the language's own APIs: its tsconfig has no Node types).
 */
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { build } from "esbuild";

const CLIENT = import.meta.dirname;
const DIST = join(CLIENT, "dist");
const ENTRY = join(CLIENT, "src", "index.ts");

rmSync(DIST, { recursive: true, force: true });

await build({
  entryPoints: [ENTRY],
  outfile: join(DIST, "peer-server.js"),
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "es2022",
  minify: true,
  legalComments: "eof",
  logLevel: "warning",
});

await build({
  entryPoints: [ENTRY],
  outfile: join(DIST, "index.js"),
  bundle: true,
  format: "esm",
  platform: "neutral",
  target: "es2022",
  packages: "external",
  logLevel: "warning",
});

const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
execFileSync(process.execPath, [tsc, "-p", join(CLIENT, "tsconfig.json")], { stdio: "inherit" });

// tsc keeps the sources' `.ts` specifiers in declarations; the published files are `.js`/`.d.ts`.
for (const file of readdirSync(DIST).filter((name) => name.endsWith(".d.ts"))) {
  const path = join(DIST, file);
  writeFileSync(path, readFileSync(path, "utf8").replace(/(from\s+["']\.{1,2}\/[^"']+)\.ts(["'])/g, "$1.js$2"));
}
