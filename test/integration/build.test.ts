import { execFile } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import WebSocket from "ws";
import type * as Sdk from "../../client/src/index.ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { registeredPeer } from "../helpers/peers.ts";
import { workers } from "../helpers/cluster.ts";
import { getJson, ROOT, startServer, type ServerProcess } from "../helpers/server-process.ts";

/**
 * The production build: `npm run build` compiles cluster.ts and src/ to dist/ with tsc and builds
 * the client SDK, and plain node runs it (the Docker image's command), as a cluster, without tsx.
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

  it("builds the client SDK too (client/dist: the browser bundle, the Node module, the types), and the compiled server serves the bundle and the demo", async () => {
    const running = server as ServerProcess;
    for (const file of ["peer-server.js", "index.js", "index.d.ts"]) expect(existsSync(join(ROOT, "client", "dist", file)), file).toBe(true);
    const bundle = await fetch(`${running.http}/client/peer-server.js`);
    expect(bundle.status).toBe(200);
    expect(await bundle.text()).toContain("PeerClient");
    expect((await fetch(`${running.http}/demo/`)).status).toBe(200);
    // The Node module as built: it registers with a verified key against the compiled server.
    const sdk = (await import(pathToFileURL(join(ROOT, "client", "dist", "index.js")).href)) as typeof Sdk;
    const client = new sdk.PeerClient({ url: running.http, WebSocket });
    try {
      expect((await client.register()).verified).toBe(true);
    } finally {
      client.close();
    }
  });
});
