import { Agent, request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer, type ServerProcess } from "../helpers/server-process.ts";

interface Reply {
  status: number;
  connection: string | undefined;
  body: string;
  localPort: number;
}

/** One HTTP GET through a given agent, reporting the client port so connection reuse is visible. */
function get(agent: Agent, url: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent }, (response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => (body += chunk));
      response.on("end", () =>
        resolve({ status: response.statusCode ?? 0, connection: response.headers.connection, body, localPort: req.socket?.localPort ?? 0 }),
      );
    });
    req.on("error", reject);
    req.end();
  });
}

const sidOf = (handshake: string): string => (JSON.parse(handshake.slice(1)) as { sid: string }).sid;

describe("keep-alive reuse through the cluster router", () => {
  let server: ServerProcess;

  beforeAll(async () => {
    server = await startServer({ env: { PEER_WORKERS: "2" } });
  });
  afterAll(async () => {
    await server.stop();
  });

  it("never lets one TCP connection carry requests of sessions owned by different workers", async () => {
    // A keep-alive agent with one socket would reuse a connection across sessions if the server let it.
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const base = `${server.http}/socket.io/?EIO=4&transport=polling`;
    const sessions: string[] = [];
    const ports = new Set<number>();
    for (let i = 0; i < 8; i++) {
      const handshake = await get(agent, base);
      expect(handshake.status).toBe(200);
      expect(handshake.connection).toBe("close");
      sessions.push(sidOf(handshake.body));
      ports.add(handshake.localPort);
    }
    // Sessions were spread over both workers (their ids carry the worker's slot).
    expect(new Set(sessions.map((sid) => sid.split("-", 1)[0])).size).toBe(2);
    // Every request came on a fresh connection, so each later request is routed on its own session id.
    expect(ports.size).toBe(8);
    for (const sid of sessions) {
      // Connect to the default namespace over each session, alternating workers on one keep-alive agent.
      const connect = await new Promise<number>((resolve, reject) => {
        const req = request(`${base}&sid=${sid}`, { agent, method: "POST", headers: { "content-type": "text/plain;charset=UTF-8" } }, (response) => {
          response.resume();
          response.on("end", () => resolve(response.statusCode ?? 0));
        });
        req.on("error", reject);
        req.end("40");
      });
      expect(connect).toBe(200);
      const poll = await get(agent, `${base}&sid=${sid}`);
      expect(poll.status).toBe(200);
      expect(poll.body.startsWith("40")).toBe(true); // the namespace connect answer, from the worker that owns the session
    }
    agent.destroy();
  });
});
