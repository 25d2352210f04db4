import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { configFiles } from "../helpers/config-files.ts";
import { ConfigError, configPathFromArgs, loadConfig, type Config } from "../../src/config/load.ts";
import { inertOptions } from "../../src/config/schema.ts";

const { dir, configFile } = configFiles("peer-config-unit-");

/** Loads with an empty environment so the machine's variables never leak in. */
function load(options: { file?: unknown; env?: Record<string, string> } = {}): Config {
  return loadConfig({ path: options.file === undefined ? undefined : configFile(options.file), env: options.env ?? {} });
}

/** The problems of the ConfigError that loading throws; fails the test if it does not throw one. */
function problemsOf(options: { file?: unknown; env?: Record<string, string> }): readonly string[] {
  try {
    load(options);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  throw new Error(`expected a ConfigError for ${JSON.stringify(options)}`);
}

/** Asserts that exactly one problem is reported and that it starts with `key`. */
function expectOneProblemNaming(options: { file?: unknown; env?: Record<string, string> }, key: string): void {
  const problems = problemsOf(options);
  expect(problems).toHaveLength(1);
  expect(problems[0]?.startsWith(key), `${JSON.stringify(problems)} should name ${key}`).toBe(true);
}

describe("defaults", () => {
  it("without a file or environment, every option has the documented default", () => {
    expect(load()).toEqual({
      host: "0.0.0.0",
      port: 8080,
      maxPeers: 100_000,
      shardCount: 64,
      writeTimeoutMs: 10_000,
      shutdownTimeoutMs: 10_000,
      headerTimeoutMs: 10_000,
      readTimeoutMs: 60_000,
      pingIntervalMs: 30_000,
      pongWaitMs: 35_000,
      maxMessageSize: 65_536,
      maxJsonDepth: 32,
      brokerType: "local",
      redisAddr: "localhost:6379",
      redisPassword: "",
      redisDb: 0,
      redisAdapter: "sharded",
      redisMode: "single",
      redisSentinelName: "mymaster",
      rateLimitPerSec: 100,
      rateLimitBurst: 200,
      rateLimitShards: 32,
      tlsCert: "",
      tlsKey: "",
      metricsEnabled: false,
      metricsPort: 9090,
      metricsHost: "127.0.0.1",
      adminToken: "",
      compressionEnabled: false,
      sendBufferSize: 32,
      workers: 0,
      logLevel: "info",
      dialects: ["pigeon", "p2p", "randomchat"],
      pigeonAuthToken: "",
      pigeonHubMeshNamespace: "pigeonhub-mesh",
      pigeonCorsOrigin: "",
      randomchatMaxMsgPerSecond: 40,
      randomchatAllowedOrigins: [],
      randomchatRequeueOnPartnerLeave: true,
      randomchatAuthToken: "",
      turnSecret: "",
      turnUrls: [],
      turnTtlMs: 3_600_000,
      stunUrls: [],
      keyProof: "optional",
      authJwtSecret: "",
      authJwtPublicKey: "",
      authJwksUrl: "",
      authJwtAudience: "",
      authJwtIssuer: "",
      allowedOrigins: ["*"],
      maxConnectionsPerIp: 256,
      connectionRatePerIp: 20,
      connectionBurstPerIp: 100,
      registrationRatePerIp: 20,
      registrationBurstPerIp: 100,
      trustedProxies: [],
      maxScopesPerPeer: 64,
      maxRoomsPerPeer: 8,
      maxTicketsPerPeer: 8,
      maxCriteriaBytes: 1024,
      kickBanMs: 60_000,
      resumeGraceMs: 15_000,
      resumeBuffer: 64,
    } satisfies Config);
  });

  it("an empty file object keeps every default", () => {
    expect(load({ file: {} })).toEqual(load());
  });

  it("a file overrides only the keys it names", () => {
    const config = load({ file: { port: 9000, max_peers: 5 } });
    expect(config.port).toBe(9000);
    expect(config.maxPeers).toBe(5);
    expect(config.host).toBe("0.0.0.0");
    expect(config.sendBufferSize).toBe(32);
  });

  it("reads every documented key of the seed's config.json example", () => {
    const config = load({
      file: {
        host: "127.0.0.1",
        port: 8081,
        max_peers: 1000,
        shard_count: 128,
        write_timeout: "5s",
        header_timeout: "5s",
        read_timeout: "30s",
        ping_interval: "20s",
        pong_wait: "25s",
        max_message_size: 4096,
        broker_type: "redis",
        redis_addr: "redis:6379",
        redis_password: "secret",
        redis_db: 3,
        rate_limit_per_sec: 10,
        rate_limit_burst: 20,
        rate_limit_shards: 8,
        tls_cert: "/c.pem",
        tls_key: "/k.pem",
        metrics_enabled: false,
        metrics_port: 9191,
        compression_enabled: true,
        send_buffer_size: 8,
      },
    });
    expect(config).toMatchObject({
      host: "127.0.0.1",
      port: 8081,
      maxPeers: 1000,
      shardCount: 128,
      writeTimeoutMs: 5_000,
      headerTimeoutMs: 5_000,
      readTimeoutMs: 30_000,
      pingIntervalMs: 20_000,
      pongWaitMs: 25_000,
      maxMessageSize: 4096,
      brokerType: "redis",
      redisAddr: "redis:6379",
      redisPassword: "secret",
      redisDb: 3,
      rateLimitPerSec: 10,
      rateLimitBurst: 20,
      rateLimitShards: 8,
      tlsCert: "/c.pem",
      tlsKey: "/k.pem",
      metricsEnabled: false,
      metricsPort: 9191,
      compressionEnabled: true,
      sendBufferSize: 8,
    });
  });
});

describe("durations", () => {
  it.each([
    ["10s", 10_000],
    ["1m30s", 90_000],
    ["250ms", 250],
    [1500, 1500],
  ])("write_timeout %j is %d ms", (value, ms) => {
    expect(load({ file: { write_timeout: value } }).writeTimeoutMs).toBe(ms);
  });

  it("ping_interval and pong_wait accept strings and numbers side by side", () => {
    const config = load({ file: { ping_interval: 200, pong_wait: "1m30s", header_timeout: 100, read_timeout: "250ms" } });
    expect(config.pingIntervalMs).toBe(200);
    expect(config.pongWaitMs).toBe(90_000);
    expect(config.headerTimeoutMs).toBe(100);
    expect(config.readTimeoutMs).toBe(250);
  });

  it.each([["10 seconds"], ["5x"], [-1], [""], [true], [{}]])("a bad duration %j names its key", (value) => {
    expectOneProblemNaming({ file: { read_timeout: value } }, "read_timeout");
  });

  it.each([["soon"], [0], [-5], [null]])("a bad header_timeout %j names its key", (value) => {
    expectOneProblemNaming({ file: { header_timeout: value } }, "header_timeout");
  });

  it("pong_wait must be longer than ping_interval", () => {
    expectOneProblemNaming({ file: { ping_interval: "10s", pong_wait: "10s" } }, "pong_wait");
  });

  it("header_timeout may equal read_timeout", () => {
    expect(load({ file: { header_timeout: "3s", read_timeout: "3s" } })).toMatchObject({ headerTimeoutMs: 3_000, readTimeoutMs: 3_000 });
  });

  it.each([
    [{ header_timeout: "4s", read_timeout: "3s" }],
    [{ read_timeout: "5s" }], // the default header_timeout (10s) is longer
  ])("header_timeout longer than read_timeout (%j) is rejected", (file) => {
    expectOneProblemNaming({ file }, "header_timeout");
  });
});

describe("environment overrides beat the file", () => {
  const cases: [string, Record<string, unknown>, Record<string, string>, Partial<Config>][] = [
    ["PEER_HOST", { host: "10.0.0.1" }, { PEER_HOST: "127.0.0.1" }, { host: "127.0.0.1" }],
    ["PEER_PORT", { port: 8000 }, { PEER_PORT: "9090" }, { port: 9090 }],
    ["PEER_MAX_PEERS", { max_peers: 10 }, { PEER_MAX_PEERS: "20" }, { maxPeers: 20 }],
    ["PEER_BROKER", { broker_type: "local" }, { PEER_BROKER: "redis" }, { brokerType: "redis" }],
    ["PEER_COMPRESSION", { compression_enabled: false }, { PEER_COMPRESSION: "true" }, { compressionEnabled: true }],
    ["PEER_COMPRESSION off", { compression_enabled: true }, { PEER_COMPRESSION: "false" }, { compressionEnabled: false }],
    ["PEER_SEND_BUFFER", { send_buffer_size: 4 }, { PEER_SEND_BUFFER: "64" }, { sendBufferSize: 64 }],
    ["REDIS_ADDR", { redis_addr: "file:1" }, { REDIS_ADDR: "env:2" }, { redisAddr: "env:2" }],
    ["REDIS_PASSWORD", { redis_password: "from-file" }, { REDIS_PASSWORD: "from-env" }, { redisPassword: "from-env" }],
    [
      "TLS_CERT and TLS_KEY",
      { tls_cert: "/file/cert.pem", tls_key: "/file/key.pem" },
      { TLS_CERT: "/env/cert.pem", TLS_KEY: "/env/key.pem" },
      { tlsCert: "/env/cert.pem", tlsKey: "/env/key.pem" },
    ],
    ["PEER_WORKERS", { workers: 2 }, { PEER_WORKERS: "3" }, { workers: 3 }],
    ["PEER_METRICS_ENABLED", { metrics_enabled: false }, { PEER_METRICS_ENABLED: "true" }, { metricsEnabled: true }],
    ["PEER_METRICS_PORT", { metrics_port: 9191 }, { PEER_METRICS_PORT: "0" }, { metricsPort: 0 }],
    ["PEER_METRICS_HOST", { metrics_host: "127.0.0.1" }, { PEER_METRICS_HOST: "10.0.0.2" }, { metricsHost: "10.0.0.2" }],
    ["PEER_ADMIN_TOKEN", { admin_token: "from-file" }, { PEER_ADMIN_TOKEN: "from-env" }, { adminToken: "from-env" }],
    ["PEER_RESUME_GRACE", { resume_grace: "5s" }, { PEER_RESUME_GRACE: "0" }, { resumeGraceMs: 0 }],
    ["PEER_RESUME_BUFFER", { resume_buffer: 8 }, { PEER_RESUME_BUFFER: "128" }, { resumeBuffer: 128 }],
  ];

  it.each(cases)("%s", (_name, file, env, expected) => {
    expect(load({ file, env })).toMatchObject(expected);
    // Without the variable the file's value stands, so the override is what changed it.
    expect(load({ file })).not.toMatchObject(expected);
  });

  it("TLS_CERT alone overrides the file's certificate and keeps its key", () => {
    const config = load({ file: { tls_cert: "/file/cert.pem", tls_key: "/file/key.pem" }, env: { TLS_CERT: "/env/cert.pem" } });
    expect(config.tlsCert).toBe("/env/cert.pem");
    expect(config.tlsKey).toBe("/file/key.pem");
  });

  it("environment variables apply without a file too", () => {
    expect(load({ env: { PEER_PORT: "1234", PEER_MAX_PEERS: "7" } })).toMatchObject({ port: 1234, maxPeers: 7 });
  });

  it("an empty variable is ignored", () => {
    expect(load({ file: { port: 8000 }, env: { PEER_PORT: "" } }).port).toBe(8000);
  });

  it("a variable that is not in the table changes nothing", () => {
    expect(load({ env: { PEER_SHARD_COUNT: "8", SHARD_COUNT: "8" } }).shardCount).toBe(64);
  });

  it.each([
    ["PEER_PORT", "eighty"],
    ["PEER_PORT", "70000"],
    ["PEER_MAX_PEERS", "0"],
    ["PEER_MAX_PEERS", "1.5"],
    ["PEER_BROKER", "kafka"],
    ["PEER_COMPRESSION", "maybe"],
    ["PEER_SEND_BUFFER", "-1"],
    ["PEER_WORKERS", "many"],
    ["PEER_METRICS_ENABLED", "maybe"],
    ["PEER_METRICS_PORT", "65536"],
  ])("a bad value in %s=%j is a ConfigError naming the variable", (name, value) => {
    expectOneProblemNaming({ env: { [name]: value } }, name);
  });

  it("a bad environment value is reported even when the file's value is fine", () => {
    expectOneProblemNaming({ file: { port: 8000 }, env: { PEER_PORT: "nope" } }, "PEER_PORT");
  });
});

describe("validation", () => {
  it("an unknown key is rejected by name", () => {
    expectOneProblemNaming({ file: { prot: 8080 } }, "prot");
  });

  it.each([
    ["port", "8080"],
    ["host", 42],
    ["max_peers", "many"],
    ["max_peers", 1.5],
    ["compression_enabled", "true"],
    ["metrics_enabled", 1],
    ["broker_type", "kafka"],
    ["redis_password", null],
    ["send_buffer_size", [4]],
    ["log_level", "loud"],
  ])("a wrong type %s=%j names the key", (key, value) => {
    expectOneProblemNaming({ file: { [key]: value } }, key);
  });

  it.each([
    ["port", -1],
    ["port", 65_536],
    ["max_peers", 0],
    ["shard_count", 3],
    ["shard_count", 0],
    ["max_message_size", 10],
    ["redis_db", 16],
    ["rate_limit_per_sec", 0],
    ["send_buffer_size", 0],
    ["metrics_port", 70_000],
    ["workers", -1],
  ])("an out-of-range %s=%j names the key", (key, value) => {
    expectOneProblemNaming({ file: { [key]: value } }, key);
  });

  it("rate_limit_burst below rate_limit_per_sec is rejected", () => {
    expectOneProblemNaming({ file: { rate_limit_per_sec: 50, rate_limit_burst: 10 } }, "rate_limit_burst");
  });

  it("tls_cert without tls_key is rejected", () => {
    expectOneProblemNaming({ file: { tls_cert: "/c.pem" } }, "tls_cert");
  });

  it("every problem is reported at once", () => {
    const problems = problemsOf({ file: { bogus: 1, port: "x", shard_count: 3 }, env: { PEER_MAX_PEERS: "none" } });
    for (const key of ["bogus", "port", "shard_count", "PEER_MAX_PEERS"]) {
      expect(problems.some((problem) => problem.startsWith(key)), `${key} in ${JSON.stringify(problems)}`).toBe(true);
    }
    expect(problems).toHaveLength(4);
  });

  it("a file that is not valid JSON is a ConfigError naming the file", () => {
    const path = configFile("{ port: 8080 ");
    expect(() => loadConfig({ path, env: {} })).toThrow(ConfigError);
    try {
      loadConfig({ path, env: {} });
    } catch (error) {
      expect((error as ConfigError).problems[0]).toContain(path);
    }
  });

  it.each([["[]"], ["42"], ["null"], ['"port"']])("a file whose JSON is %s, not an object, is a ConfigError", (text) => {
    expect(() => loadConfig({ path: configFile(text), env: {} })).toThrow(ConfigError);
  });

  it("a missing file is a ConfigError naming the path", () => {
    const path = join(dir, "does-not-exist.json");
    try {
      loadConfig({ path, env: {} });
      expect.unreachable("a missing file must be an error");
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).problems[0]).toContain(path);
    }
  });

  it("the error message lists every problem", () => {
    try {
      load({ file: { bogus: 1, port: "x" } });
      expect.unreachable("must throw");
    } catch (error) {
      expect((error as Error).message).toContain("bogus");
      expect((error as Error).message).toContain("port");
    }
  });
});

describe("the result", () => {
  it("is frozen", () => {
    const config = load({ file: { port: 9000 } });
    expect(Object.isFrozen(config)).toBe(true);
    expect(() => {
      (config as unknown as Record<string, unknown>)["port"] = 1;
    }).toThrow(TypeError);
    expect(config.port).toBe(9000);
  });
});

describe("configPathFromArgs", () => {
  it.each([
    [["-config", "a.json"], "a.json"],
    [["--config", "b.json"], "b.json"],
    [["--config=c.json"], "c.json"],
    [["-config=d.json"], "d.json"],
    [["--verbose", "--config", "e.json", "--other"], "e.json"],
  ])("%j gives %s", (argv, path) => {
    expect(configPathFromArgs(argv)).toBe(path);
  });

  it("no flag gives no path", () => {
    expect(configPathFromArgs([])).toBeUndefined();
    expect(configPathFromArgs(["config.json"])).toBeUndefined();
  });

  it.each([["-config"], ["--config"]])("%s without a path is a ConfigError", (flag) => {
    expect(() => configPathFromArgs([flag])).toThrow(ConfigError);
  });
});

describe("options accepted for the original's config files but without effect", () => {
  it("are named at start-up when set away from their defaults, each with why", () => {
    expect(inertOptions(load())).toEqual([]);
    const notes = inertOptions(load({ file: { shard_count: 128, rate_limit_shards: 8, metrics_enabled: true } }));
    expect(notes.map((note) => note.split(":")[0])).toEqual(["shard_count", "rate_limit_shards"]);
  });
});
