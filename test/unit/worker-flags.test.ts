import { describe, expect, it } from "vitest";
import { workerExecArgv } from "../../src/config/role.ts";

describe("the Node flags a cluster worker starts with", () => {
  it("are the primary's own plus a small young generation", () => {
    expect(workerExecArgv(["--import", "tsx"], {})).toEqual(["--import", "tsx", "--max-semi-space-size=4"]);
  });

  it("keep a young generation size the operator gave, in the primary's flags or in NODE_OPTIONS", () => {
    expect(workerExecArgv(["--max-semi-space-size=32"], {})).toEqual(["--max-semi-space-size=32"]);
    expect(workerExecArgv(["--import", "tsx"], { NODE_OPTIONS: "--max-semi-space-size=64 --enable-source-maps" })).toEqual(["--import", "tsx"]);
  });
});
