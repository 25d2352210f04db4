import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { configFiles } from "../helpers/config-files.ts";
import { freePort } from "../helpers/ports.ts";
import { getJson, runToExit, startServer, type ServerProcess } from "../helpers/server-process.ts";

const { dir, configFile } = configFiles("peer-config-startup-");

/** A config that is valid and listens on a free loopback port; max_peers marks it as this file's. */
const valid = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({ host: "127.0.0.1", port: 0, max_peers: 4321, ...extra });

/** Starts the server with exactly `args`, checks /health shows the file's max_peers, then stops it. */
async function startsWith(args: string[], env: Record<string, string> = {}): Promise<ServerProcess> {
  const server = await startServer({ args, env });
  try {
    const health = await getJson(`${server.http}/health`);
    expect(health.status).toBe(200);
    expect(health.body["max_peers"]).toBe(4321);
  } finally {
    expect(await server.stop()).toBe(0);
  }
  return server;
}

/** Asserts a start-up failure: non-zero exit, the key named, one message and no stack trace. */
function expectCleanFailure(result: { code: number | null; output: string }, ...mentions: string[]): void {
  expect(result.code, result.output).not.toBeNull();
  expect(result.code, result.output).not.toBe(0);
  for (const mention of mentions) expect(result.output).toContain(mention);
  expect(result.output).not.toMatch(/^\s+at /m);
  expect(result.output).not.toContain('"listening"');
}

/** Holds a port open so a server told to use it could not listen there. */
async function occupiedPort(): Promise<{ port: number; server: Server }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no port");
  return { port: address.port, server };
}

describe("the config file flag", () => {
  it.each([
    ["-config PATH", (path: string) => ["-config", path]],
    ["--config PATH", (path: string) => ["--config", path]],
    ["--config=PATH", (path: string) => [`--config=${path}`]],
  ])("%s loads the file", async (_form, args) => {
    await startsWith(args(configFile(valid())));
  });
});

describe("environment over file at start-up", () => {
  it("PEER_PORT overrides the file's port", async () => {
    // The file names a port that is taken: the server only starts if the variable wins.
    const taken = await occupiedPort();
    try {
      const port = await freePort();
      const server = await startsWith(["--config", configFile(valid({ port: taken.port }))], { PEER_PORT: String(port) });
      expect(server.port).toBe(port);
    } finally {
      await new Promise<void>((resolve) => taken.server.close(() => resolve()));
    }
  });

  it("PEER_MAX_PEERS overrides the file's max_peers", async () => {
    const server = await startServer({ args: ["--config", configFile(valid())], env: { PEER_MAX_PEERS: "77" } });
    try {
      expect((await getJson(`${server.http}/health`)).body["max_peers"]).toBe(77);
    } finally {
      await server.stop();
    }
  });
});

describe("a bad configuration stops start-up with one clear message", () => {
  it("invalid JSON names the file", async () => {
    const path = configFile('{"port": 0,');
    expectCleanFailure(await runToExit(["--config", path]), path);
  });

  it("an unknown key names the key", async () => {
    expectCleanFailure(await runToExit(["--config", configFile(valid({ max_peer: 10 }))]), "max_peer");
  });

  it("a bad value names the key", async () => {
    expectCleanFailure(await runToExit(["--config", configFile(valid({ send_buffer_size: "lots" }))]), "send_buffer_size");
  });

  it("a bad duration names the key", async () => {
    expectCleanFailure(await runToExit(["-config", configFile(valid({ ping_interval: "often" }))]), "ping_interval");
  });

  it("a bad environment value names the variable", async () => {
    expectCleanFailure(await runToExit(["--config", configFile(valid())], { PEER_MAX_PEERS: "unlimited" }), "PEER_MAX_PEERS");
  });

  it("every problem is in the one message", async () => {
    expectCleanFailure(await runToExit(["--config", configFile(valid({ bogus_key: 1, port: "eighty" }))]), "bogus_key", "port");
  });

  it("a missing file names the path", async () => {
    const path = join(dir, "missing.json");
    expectCleanFailure(await runToExit(["--config", path]), path);
  });

  it("--config without a path is refused", async () => {
    expectCleanFailure(await runToExit(["--config"]), "--config");
  });
});
