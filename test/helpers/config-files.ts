import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll } from "vitest";

/**
 * A temp dir for this test file (deleted in afterAll, registered here) and a function that writes
 * `contents` (an object is JSON-encoded, a string written as is) to a fresh file in it and returns its path.
 */
export function configFiles(prefix: string): { dir: string; configFile: (contents: unknown) => string } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  let fileCount = 0;
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const configFile = (contents: unknown): string => {
    const path = join(dir, `config-${++fileCount}.json`);
    writeFileSync(path, typeof contents === "string" ? contents : JSON.stringify(contents));
    return path;
  };
  return { dir, configFile };
}
