import { execFile } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { registeredPeer } from "../helpers/peers.ts";
import { workers } from "../helpers/cluster.ts";
import { getJson, ROOT, startServer, type ServerProcess } from "../helpers/server-process.ts";

/**
 * The production build: `npm run build` compiles cluster.ts and src/ to dist/ with tsc, and plain
 * node runs it (the Docker image's command), as a cluster, without tsx.
 */

const DIST = join(ROOT, "dist");
let server: ServerProcess | undefined;

beforeAll(async () => {
  rmSync(DIST, { recursive: true, force: true });
  await promisify(execFile)("npm", ["run", "build"], { cwd: ROOT });
  server = await startServer({ entry: join(DIST, "cluster.js"), compiled: true, env: { PEER_WORKERS: "2" } });
}, 120_000);
afterAll(async () => {
  await server?.stop();
});

describe("npm run build", () => {
  it("compiles to dist/, and node dist/cluster.js serves a 2-worker cluster: health, both workers, a peer registers and joins", async () => {
    const running = server as ServerProcess;
    expect((await getJson(`${running.http}/health`)).status).toBe(200);
    expect(await workers(running)).toHaveLength(2);
    const peer = await registeredPeer(running, "ws", { namespace: "built" });
    expect(peer.fingerprint).toMatch(/^[0-9a-f]{64}$/);
    peer.close();
    expect(running.process.spawnargs).not.toContain("tsx");
  });
});
