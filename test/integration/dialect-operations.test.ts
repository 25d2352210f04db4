import { randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { DialectClient, RefusedUpgrade } from "../helpers/dialect-client.ts";
import { connectWs, type TestPeer } from "../helpers/peers.ts";
import { getJson, startServer, type ServerProcess } from "../helpers/server-process.ts";
import { waitFor } from "../helpers/wait.ts";

/**
 * Dialect connections are connections of the server like any other: they share max_peers with the
 * native transports, are closed over max_message_size, counted in /stats by dialect, closed with
 * 1001 by a graceful shutdown; and the `dialects` option decides which are served.
 */

const running: ServerProcess[] = [];
const clients: (DialectClient | TestPeer)[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await Promise.all(running.splice(0).map((server) => server.stop()));
});

async function serve(config: Record<string, unknown> = {}, env: Record<string, string> = {}): Promise<ServerProcess> {
  const server = await startServer({ config, env });
  running.push(server);
  return server;
}

const base = (server: ServerProcess): string => server.http.replace(/^http/, "ws");
const urls = (server: ServerProcess): Record<string, string> => ({
  pigeon: `${base(server)}/pigeon?peerId=${randomBytes(20).toString("hex")}`,
  p2p: `${base(server)}/p2p/ws`,
  randomchat: `${base(server)}/randomchat/ws`,
});

async function open(url: string): Promise<DialectClient> {
  const client = await DialectClient.open(url);
  clients.push(client);
  return client;
}

describe("dialect connections and the server's limits", () => {
  it.each([
    ["one process", {}],
    ["two workers", { PEER_WORKERS: "2" }],
  ])("%s: max_peers counts every dialect's connections with the native ones; the one over it is closed with 1013", async (_name, env) => {
    const server = await serve({ max_peers: 4 }, env);
    const native = await connectWs(server.ws);
    clients.push(native);
    for (const url of Object.values(urls(server))) await open(url);
    await waitFor(async () => (await getJson(`${server.http}/stats`)).body["connections"] as Record<string, number>, (c) => c["pigeon"] === 1 && c["p2p"] === 1 && c["randomchat"] === 1 && c["ws"] === 1, {
      timeoutMs: 5_000,
      what: "/stats to count one connection of each kind",
    });
    const refused = await open(urls(server)["randomchat"] as string);
    expect(await refused.closed).toBe(1013);
    expect(refused.ofType("ready")).toEqual([]);
  });

  it("a frame over max_message_size closes a dialect connection with 1009", async () => {
    const server = await serve({ max_message_size: 1024 });
    for (const url of Object.values(urls(server))) {
      const client = await open(url);
      client.send("x".repeat(1500));
      expect(await client.closed, url).toBe(1009);
    }
  });

  it("a graceful shutdown closes every dialect connection with 1001", async () => {
    const server = await serve();
    const opened = await Promise.all(Object.values(urls(server)).map((url) => open(url)));
    running.splice(running.indexOf(server), 1);
    await server.stop("SIGTERM");
    expect(await Promise.all(opened.map((client) => client.closed))).toEqual([1001, 1001, 1001]);
  });
});

describe("the dialects option", () => {
  it("serves only the dialects named; the others' paths answer 404 like any unknown path", async () => {
    const server = await serve({ dialects: ["p2p"] });
    const p2p = await open(`${base(server)}/p2p/ws`);
    p2p.send({ type: "IDENTIFY", username: "only-p2p" });
    expect((await p2p.nextOfType("AUTH_SUCCESS"))["username"]).toBe("only-p2p");
    for (const path of ["/pigeon?peerId=" + "a".repeat(40), "/randomchat/ws"]) {
      const refused = await DialectClient.open(`${base(server)}${path}`).then(
        (client) => (client.close(), undefined),
        (error: unknown) => error,
      );
      expect(refused, path).toBeInstanceOf(RefusedUpgrade);
      expect((refused as RefusedUpgrade).status, path).toBe(404);
    }
    expect((await getJson(`${server.http}/pigeon/health`)).status).toBe(404);
    expect((await getJson(`${server.http}/randomchat/healthz`)).status).toBe(404);
  });

  it("PEER_DIALECTS overrides the file; an unknown dialect stops start-up naming it", async () => {
    const server = await serve({ dialects: ["p2p"] }, { PEER_DIALECTS: "randomchat" });
    expect((await getJson(`${server.http}/randomchat/healthz`)).status).toBe(200);
    await expect(serve({ dialects: ["p2p", "irc"] })).rejects.toThrow(/dialects: must name only pigeon, p2p, randomchat \(not irc\)/);
  });
});
