import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startNodes } from "../helpers/redis-nodes.ts";
import { startRedisServer, type RedisServer } from "../helpers/redis-server.ts";
import { getJson, type ServerProcess } from "../helpers/server-process.ts";

/**
 * /health and /readyz decide up or down from the same facts: whether this process accepts
 * connections and whether each backend is reachable. Data the peer count cannot be read from (a
 * malformed key in Redis) leaves the count unknown; it does not make one endpoint say down while
 * the other says ready.
 */
describe("/health and /readyz with malformed data in Redis", () => {
  let redis: RedisServer;
  let node: ServerProcess;
  let client: Redis;

  beforeAll(async () => {
    redis = await startRedisServer();
    [node] = (await startNodes(redis, [{}])) as [ServerProcess];
    client = new Redis(redis.url);
  }, 30_000);
  afterAll(async () => {
    client.disconnect();
    await node.stop();
    await redis.stop();
  });

  it("agree: both 200 while the namespace index has the wrong type, the count unknown; the count is back once the key is", async () => {
    await client.set("{ps}:namespaces", "not a set");
    const health = await getJson(`${node.http}/health`);
    const ready = await getJson(`${node.http}/readyz`);
    expect(ready).toMatchObject({ status: 200, body: { ready: true, backends: { redis: "up" } } });
    expect(health).toMatchObject({ status: 200, body: { status: "ok", peers: null, backends: { redis: "up" } } });

    await client.del("{ps}:namespaces");
    expect(await getJson(`${node.http}/health`)).toMatchObject({ status: 200, body: { status: "ok", peers: 0 } });
  });
});
