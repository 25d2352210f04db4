import type { ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ping } from "../../test/helpers/redis-server.ts";
import { exited, freePort, spawnPinned, stopProcess } from "./processes.ts";
import { BENCH_SERVER_CONFIG, HOST, ROOT, serverConfigFor, startNodeService, type NodeService, type TargetSpec, type TargetStop } from "./targets.ts";

const REDIS_BINARY = process.env.REDIS_SERVER_BIN ?? "/usr/bin/redis-server";
/** The system instance's port: never the bench's. */
const SYSTEM_REDIS_PORT = 6379;

export type RedisAdapterKind = "sharded" | "classic";

/** A private redis-server: loopback, a free port (never 6379), no persistence, pinned like the target. */
async function startRedis(cpus: string | undefined): Promise<{ child: ChildProcess; port: number; stop(): Promise<void> }> {
  if (!existsSync(REDIS_BINARY)) throw new Error(`redis-server not found at ${REDIS_BINARY}: install the Debian package redis-server (or set REDIS_SERVER_BIN)`);
  const dir = mkdtempSync(join(tmpdir(), "peer-bench-redis-"));
  let lastError = "";
  // A free port found by binding port 0 can be taken before redis-server binds it: try a few.
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort(HOST);
    if (port === SYSTEM_REDIS_PORT) continue;
    const child = spawnPinned(cpus, REDIS_BINARY, ["--port", String(port), "--bind", HOST, "--save", "", "--appendonly", "no", "--dir", dir, "--daemonize", "no", "--logfile", ""], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    const collect = (chunk: Buffer): void => {
      output = (output + chunk.toString()).slice(-2_000);
    };
    child.stdout?.on("data", collect);
    child.stderr?.on("data", collect);
    const deadline = performance.now() + 5_000;
    let ready = false;
    while (!ready && performance.now() < deadline && child.exitCode === null && child.signalCode === null) {
      ready = await ping(port);
      if (!ready) await new Promise((done) => setTimeout(done, 50));
    }
    if (ready) {
      return {
        child,
        port,
        async stop() {
          await stopProcess(child, 5_000);
          rmSync(dir, { recursive: true, force: true });
        },
      };
    }
    await stopProcess(child, 1_000);
    lastError = output;
  }
  rmSync(dir, { recursive: true, force: true });
  throw new Error(`redis-server did not start:\n${lastError}`);
}

/**
 * `nodes` single-process servers (PEER_WORKERS=1) sharing one private Redis (PEER_BROKER=redis)
 * with the given Socket.IO Redis adapter. Endpoints are the nodes in order; the measured roots
 * are named node0.. and redis, so jobs report the CPU each spends per operation.
 */
export function redisNodesTarget(options: { nodes: number; adapter: RedisAdapterKind; id?: string }): TargetSpec {
  const { nodes, adapter } = options;
  return {
    id: options.id ?? `${nodes}-node${nodes === 1 ? "" : "s"}`,
    description: `${nodes} peer-server node${nodes === 1 ? "" : "s"} (cluster.ts, PEER_WORKERS=1 each) through one private redis-server, PEER_REDIS_ADAPTER=${adapter}`,
    async start(context) {
      const redis = await startRedis(context.cpus);
      const dir = mkdtempSync(join(tmpdir(), "peer-bench-nodes-"));
      const services: NodeService[] = [];
      /** Each node's admin listener port, when it serves one (see serverConfigFor). */
      const admins: (number | undefined)[] = [];
      const cleanup = async (): Promise<TargetStop> => {
        // Nodes first (each removes its peers from Redis on the way out), then Redis.
        try {
          const stops = await Promise.all(services.map((service) => service.stop()));
          return { ms: Math.max(0, ...stops.map((stop) => stop.ms)), exitCodes: stops.flatMap((stop) => stop.exitCodes) };
        } finally {
          await redis.stop();
          rmSync(dir, { recursive: true, force: true });
        }
      };
      try {
        const started = await Promise.allSettled(
          Array.from({ length: nodes }, async (_, index) => {
            const port = await freePort(HOST);
            const configPath = join(dir, `node${index}.json`);
            const { config, admin } = await serverConfigFor(BENCH_SERVER_CONFIG, port);
            admins[index] = admin;
            writeFileSync(configPath, JSON.stringify(config));
            const service = await startNodeService({
              entry: join(ROOT, "cluster.ts"),
              args: ["--config", configPath],
              env: { PEER_WORKERS: "1", PEER_BROKER: "redis", REDIS_ADDR: `${HOST}:${redis.port}`, PEER_REDIS_ADAPTER: adapter },
              cpus: context.cpus,
              profileDir: context.profileDir,
              knownPort: port,
            });
            services[index] = service;
            return service;
          }),
        );
        const failure = started.find((result): result is PromiseRejectedResult => result.status === "rejected");
        if (failure !== undefined) throw failure.reason;
      } catch (error) {
        await cleanup().catch(() => undefined);
        throw error;
      }
      const redisDied = exited(redis.child).then(() => `redis-server exited unexpectedly (${redis.child.exitCode ?? redis.child.signalCode})`);
      let stopping = false;
      return {
        endpoints: services.map((service, index) => {
          const admin = admins[index];
          return { host: HOST, port: service.port, ...(admin === undefined ? {} : { admin }) };
        }),
        pids: [...services.map((service) => service.child.pid as number), redis.child.pid as number],
        names: [...services.map((_, index) => `node${index}`), "redis"],
        output: services.flatMap((service) => service.output.slice(-10)),
        died: Promise.race([...services.map((service) => service.died), redisDied.then((message) => (stopping ? new Promise<string>(() => undefined) : message))]),
        async stop() {
          stopping = true;
          return cleanup();
        },
      };
    },
  };
}
