import { describe, expect, it } from "vitest";
import { workers } from "../helpers/cluster.ts";
import { registeredPeer } from "../helpers/peers.ts";
import { startServer } from "../helpers/server-process.ts";

describe("stopping a cluster from a terminal", () => {
  it("exits 0 when the primary and its workers all get SIGINT at once (Ctrl-C reaches the whole process group)", async () => {
    const server = await startServer({ env: { PEER_WORKERS: "2" } });
    const peer = await registeredPeer(server, "ws");
    const pids = (await workers(server)).map((worker) => worker.pid);
    expect(pids).toHaveLength(2);
    for (const pid of pids) process.kill(pid, "SIGINT");
    server.process.kill("SIGINT");
    for (const pid of pids) process.kill(pid, "SIGINT"); // and once more: the workers leave it to the primary
    const code = await server.exited;
    expect(code).toBe(0);
    expect(server.output.join("\n")).not.toMatch(/Unhandled|EPIPE/);
    expect((await peer.closed).code).toBe(1001);
  });
});
