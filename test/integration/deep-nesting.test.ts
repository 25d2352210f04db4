import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { workers } from "../helpers/cluster.ts";
import { connectWs, registeredPeer, type TestPeer } from "../helpers/peers.ts";
import { RawSocketIo } from "../helpers/raw-socket-io.ts";
import { startNodes, unique } from "../helpers/redis-nodes.ts";
import { startRedisServer, type RedisServer } from "../helpers/redis-server.ts";
import { startServer, type ServerProcess } from "../helpers/server-process.ts";

/**
 * Deeply nested JSON in any field a client controls is refused with 400 at the edge (max_json_depth,
 * 32 by default), in every topology: such data used to overflow the stack of whichever process
 * serialized it (the cluster primary's IPC, the cluster adapter, socket.io-parser's encoder,
 * JSON.stringify in the meta size check) and end it. Each frame below is under max_message_size.
 */

/** `levels` nested arrays around 1, as JSON text (built as text: JSON.stringify itself overflows on such values). */
const deep = (levels: number): string => `${"[".repeat(levels)}1${"]".repeat(levels)}`;

/** The frames that took processes down: type, and the envelope's fields other than type as JSON text. */
const deepFrames = (namespace: string, to: string): [string, string, string][] => [
  ["register meta, 2,030 levels (4 KB)", "register", `{"payload":{"public_key":"k-${namespace}","meta":{"x":${deep(2_030)}}}}`],
  ["metadata meta, 5,000 levels", "metadata", `{"payload":{"meta":{"x":${deep(5_000)}}}}`],
  ["join meta, 2,030 levels", "join", `{"payload":{"namespace":"${namespace}-2","meta":{"x":${deep(2_030)}}}}`],
  ["broadcast data, 2,000 levels", "broadcast", `{"payload":{"namespace":"${namespace}","data":${deep(2_000)}}}`],
  ["broadcast data, 5,000 levels", "broadcast", `{"payload":{"namespace":"${namespace}","data":${deep(5_000)}}}`],
  ["signal payload, 5,000 levels", "signal", `{"to":"${to}","payload":{"sdp":${deep(5_000)}}}`],
  ["relay payload, 33 levels (one over the default bound)", "relay", `{"to":"${to}","payload":{"x":${deep(31)}}}`],
  ["match criteria, 5,000 levels", "match", `{"payload":{"namespace":"${namespace}","group_size":2,"criteria":{"x":${deep(5_000)}}}}`],
];

interface Topology {
  name: string;
  start(): Promise<{ servers: ServerProcess[]; stop(): Promise<void> }>;
}

const TOPOLOGIES: Topology[] = [
  {
    name: "one process",
    async start() {
      const server = await startServer({ config: { max_message_size: 65_536 } });
      return { servers: [server], stop: async () => void (await server.stop()) };
    },
  },
  {
    name: "a cluster of 2 workers",
    async start() {
      const server = await startServer({ env: { PEER_WORKERS: "2" }, config: { max_message_size: 65_536 } });
      return { servers: [server], stop: async () => void (await server.stop()) };
    },
  },
  {
    name: "2 Redis nodes",
    async start() {
      const redis: RedisServer = await startRedisServer();
      const servers = await startNodes(redis, [{}, {}]);
      return {
        servers,
        stop: async () => {
          await Promise.all(servers.map((server) => server.stop()));
          await redis.stop();
        },
      };
    },
  },
];

async function pids(servers: readonly ServerProcess[]): Promise<number[]> {
  const all: number[] = [];
  for (const server of servers) {
    all.push(server.process.pid ?? -1);
    for (const worker of await workers(server)) all.push(worker.pid);
  }
  return all.sort((a, b) => a - b);
}

describe.each(TOPOLOGIES)("deep nesting against $name", (topology) => {
  let deployment: Awaited<ReturnType<Topology["start"]>>;
  const open: TestPeer[] = [];
  const first = (): ServerProcess => deployment.servers[0] as ServerProcess;
  const last = (): ServerProcess => deployment.servers[deployment.servers.length - 1] as ServerProcess;

  beforeAll(async () => {
    deployment = await topology.start();
  }, 60_000);
  afterAll(async () => {
    for (const peer of open) peer.close();
    await deployment.stop();
  });

  it("every deep frame gets 400 over /ws and Socket.IO; no process exits; a pair across processes keeps signalling", async () => {
    const before = await pids(deployment.servers);
    const namespace = unique("deep");
    // A bystander pair, on different processes where there are several (least-connections routing
    // puts consecutive connections of a 2-worker cluster on different workers).
    const alice = await registeredPeer(first(), "ws", { namespace });
    const bob = await registeredPeer(last(), "sio", { namespace });
    open.push(alice, bob);

    const ws = await connectWs(first().ws);
    open.push(ws);
    const sio = await RawSocketIo.connect(last().port);
    const frames = deepFrames(namespace, bob.fingerprint);

    // Unregistered, a deep register is refused; registered and in the namespace, every other deep frame is.
    const [registerLabel, , registerJson] = frames[0] as [string, string, string];
    const wsReply = ws.next((m) => m.type === "error" || m.type === "registered");
    ws.sendRaw(`{"type":"register",${registerJson.slice(1)}`);
    expect(await wsReply, `ws: ${registerLabel}`).toMatchObject({ type: "error", payload: { code: 400 } });
    expect(await sio.requestJson("register", registerJson), `sio: ${registerLabel}`).toMatchObject({ type: "error", payload: { code: 400 } });
    expect((await ws.register()).type).toBe("registered");
    expect((await ws.join(namespace)).type).toBe("peer_list");
    expect(await sio.requestJson("register", `{"payload":{"public_key":"${unique("raw-sio")}"}}`)).toMatchObject({ type: "registered" });
    expect(await sio.requestJson("join", `{"payload":{"namespace":"${namespace}"}}`)).toMatchObject({ type: "peer_list" });

    for (const [label, type, fieldsJson] of frames.slice(1)) {
      const reply = ws.next((m) => m.type === "error" || m.type === "pong");
      ws.sendRaw(`{"type":"${type}",${fieldsJson.slice(1)}`);
      ws.send("ping");
      expect(await reply, `ws: ${label}`).toMatchObject({ type: "error", payload: { code: 400 } });
      await ws.next("pong");
      expect(await sio.requestJson(type, fieldsJson), `sio: ${label}`).toMatchObject({ type: "error", payload: { code: 400 } });
    }
    expect((await ws.request("ping", {}, ["pong"])).type).toBe("pong");
    expect(await sio.requestJson("ping", "{}")).toMatchObject({ type: "pong" });
    sio.close();

    // Nothing deep was delivered, and the pair still signals both ways.
    const delivered = (m: { type: string }): boolean => ["broadcast", "signal", "relay", "matched"].includes(m.type);
    expect(await alice.nothing(delivered, 200)).toBe(true);
    for (let round = 0; round < 3; round++) {
      alice.send("signal", { to: bob.fingerprint, payload: { round } });
      expect((await bob.next("signal")).payload).toEqual({ round });
      bob.send("signal", { to: alice.fingerprint, payload: { round } });
      expect((await alice.next("signal")).payload).toEqual({ round });
    }
    expect(await pids(deployment.servers)).toEqual(before);
  });

  it("32 levels, the default bound, are accepted and delivered as sent", async () => {
    const namespace = unique("deep-ok");
    const sender = await registeredPeer(first(), "ws", { namespace });
    const receiver = await registeredPeer(last(), "sio", { namespace });
    open.push(sender, receiver);
    // The envelope is level 1, payload 2, data 3 to 32: 30 arrays.
    const data = JSON.parse(deep(30)) as unknown;
    sender.send("broadcast", { payload: { namespace, data } });
    expect((await receiver.next("broadcast")).payload).toEqual({ namespace, data });
  });
});
