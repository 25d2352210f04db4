import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { workers } from "../helpers/cluster.ts";
import { closeAll, connect, registeredPeer, type TestPeer } from "../helpers/peers.ts";
import { startServer, type ServerProcess } from "../helpers/server-process.ts";

describe("max_peers is one limit for the whole machine", () => {
  let server: ServerProcess;
  const open: TestPeer[] = [];

  beforeAll(async () => {
    server = await startServer({ config: { max_peers: 4 }, env: { PEER_WORKERS: "2" } });
  });
  afterAll(async () => {
    closeAll(open);
    await server.stop();
  });

  it("refuses the connection after max_peers registered peers spread over both workers", async () => {
    for (let i = 0; i < 4; i++) open.push(await registeredPeer(server, i % 2 === 0 ? "ws" : "sio"));
    const view = await workers(server);
    expect(view.filter((worker) => worker.peers.length > 0).length).toBe(2);
    for (const transport of ["ws", "sio"] as const) {
      const extra = await connect(server, transport);
      open.push(extra);
      const notice = await extra.next("error");
      expect(notice.payload?.code).toBe(503);
      expect(notice.payload?.["close_code"]).toBe(1013);
      await extra.closed;
    }
  });
});
