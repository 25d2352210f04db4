import { execFileSync } from "node:child_process";
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ROOT } from "../helpers/server-process.ts";

/**
 * The layering rules of .dependency-cruiser.cjs, which `npm test` checks: they pass on the tree as
 * it is, and a backward import (a backend importing the core, the SDK importing the server) makes
 * the check fail.
 */

const CLI = join(ROOT, "node_modules", "dependency-cruiser", "bin", "dependency-cruise.mjs");

function cruise(cwd: string): { ok: boolean; output: string } {
  try {
    const output = execFileSync(process.execPath, [CLI, "src", "cluster.ts", "client/src", "--config", ".dependency-cruiser.cjs", "--output-type", "err"], { cwd, encoding: "utf8" });
    return { ok: true, output };
  } catch (error) {
    const failed = error as { stdout?: string; stderr?: string };
    return { ok: false, output: `${failed.stdout ?? ""}${failed.stderr ?? ""}` };
  }
}

describe("layers", () => {
  const copy = mkdtempSync(join(tmpdir(), "peer-server-layers-"));
  afterAll(() => rmSync(copy, { recursive: true, force: true }));

  it("the source tree keeps every rule", () => {
    const result = cruise(ROOT);
    expect(result.output).toContain("no dependency violations");
    expect(result.ok).toBe(true);
  });

  it("a backward import (a backend importing the core, the client SDK importing the server) breaks the check, naming the rule and the import", () => {
    for (const entry of ["src", "cluster.ts", "client/src", "tsconfig.json", ".dependency-cruiser.cjs", "package.json"]) cpSync(join(ROOT, entry), join(copy, entry), { recursive: true });
    writeFileSync(join(copy, "src", "backends", "memory", "backward.ts"), 'import type { Hub } from "../../core/hub.ts";\nexport type Backward = Hub;\n');
    writeFileSync(join(copy, "client", "src", "backward.ts"), 'import { ErrorCode } from "../../src/protocol/errors.ts";\nexport const backward = ErrorCode;\n');
    const result = cruise(copy);
    expect(result.ok).toBe(false);
    expect(result.output).toContain("backends-import-nothing-above");
    expect(result.output).toContain("src/backends/memory/backward.ts");
    expect(result.output).toContain("client-stands-alone");
    expect(result.output).toContain("client/src/backward.ts");
  });
});
