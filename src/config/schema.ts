import { parseDurationMs } from "./duration.ts";

/** The validated, frozen configuration every module receives. Durations are milliseconds. */
export interface Config {
  readonly host: string;
  readonly port: number;
  readonly maxPeers: number;
  readonly shardCount: number;
  readonly writeTimeoutMs: number;
  /** The whole shutdown's deadline: drain what can be drained, then close the rest and exit (1). */
  readonly shutdownTimeoutMs: number;
  /** Absolute deadline, from accept, for a request's head (through its blank line). At most readTimeoutMs. */
  readonly headerTimeoutMs: number;
  /** Absolute deadline, from accept, for a whole request (head and body); not an idle timeout. */
  readonly readTimeoutMs: number;
  readonly pingIntervalMs: number;
  readonly pongWaitMs: number;
  readonly maxMessageSize: number;
  /** Deepest JSON nesting a message may have; the envelope object itself is depth 1. */
  readonly maxJsonDepth: number;
  readonly brokerType: "local" | "redis";
  readonly redisAddr: string;
  readonly redisPassword: string;
  readonly redisDb: number;
  /** Socket.IO Redis adapter: "sharded" (Redis 7 SPUBLISH, a channel per room) or "classic" (one channel). */
  readonly redisAdapter: "sharded" | "classic";
  /** How Redis is deployed: one server, a Redis Cluster (redis_addr lists seed nodes) or Sentinel (redis_addr lists sentinels). */
  readonly redisMode: "single" | "cluster" | "sentinel";
  /** The master's name in Sentinel mode. */
  readonly redisSentinelName: string;
  readonly rateLimitPerSec: number;
  readonly rateLimitBurst: number;
  readonly rateLimitShards: number;
  readonly tlsCert: string;
  readonly tlsKey: string;
  /** Serve Prometheus metrics (`GET /metrics`) on the admin listener; false: no listener, no metrics work at all. */
  readonly metricsEnabled: boolean;
  /** The admin listener's port (0: a free one, named in the `admin listening` log line). */
  readonly metricsPort: number;
  /** The admin listener's bind address; loopback by default: it must never face the internet. */
  readonly metricsHost: string;
  /** When set, every admin request needs `Authorization: Bearer <admin_token>` (else 401); "" admits every request. */
  readonly adminToken: string;
  readonly compressionEnabled: boolean;
  readonly sendBufferSize: number;
  /** Cluster workers; 0 means one per CPU. */
  readonly workers: number;
  readonly logLevel: "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
  /** The dialects served besides the native protocol (src/dialects/). */
  readonly dialects: readonly ("pigeon" | "p2p" | "randomchat")[];
  /** PeerPigeon: a shared token its clients must present (Bearer header or `?token=`); "" means none. */
  readonly pigeonAuthToken: string;
  /** PeerPigeon: announcing into this network makes a peer a hub. */
  readonly pigeonHubMeshNamespace: string;
  /** PeerPigeon: the Access-Control-Allow-Origin of its HTTP endpoints; "" follows allowedOrigins. */
  readonly pigeonCorsOrigin: string;
  /** Random chat: messages per second per connection, past which it answers RATE_LIMIT. */
  readonly randomchatMaxMsgPerSecond: number;
  /** Random chat: origins allowed to connect (others are closed with 1008), besides allowedOrigins; empty: allowedOrigins alone. */
  readonly randomchatAllowedOrigins: readonly string[];
  /** Random chat: a user whose partner leaves goes back to waiting. */
  readonly randomchatRequeueOnPartnerLeave: boolean;
  /** Random chat: a token `auth` must carry; "" accepts any. */
  readonly randomchatAuthToken: string;
  /** The TURN server's shared secret (coturn `use-auth-secret`); "" gives no TURN credentials. */
  readonly turnSecret: string;
  /** TURN URLs given with each credential (`turn:host:3478?transport=udp`, ...). */
  readonly turnUrls: readonly string[];
  /** How long a TURN credential is valid. */
  readonly turnTtlMs: number;
  /** STUN URLs given to every registered peer. */
  readonly stunUrls: readonly string[];
  /** Proof of key possession at register (challenge + signature): never asked, optional, or required. */
  readonly keyProof: "off" | "optional" | "required";
  /** HS256 secret every connection's JWT must be signed with; "" for none. */
  readonly authJwtSecret: string;
  /** PEM public key (SPKI) for RS256/ES256/EdDSA JWTs; "" for none. */
  readonly authJwtPublicKey: string;
  /** A JWKS URL the JWT verification keys are fetched from; "" for none. */
  readonly authJwksUrl: string;
  /** When set, a JWT's `aud` must include it. */
  readonly authJwtAudience: string;
  /** When set, a JWT's `iss` must equal it. */
  readonly authJwtIssuer: string;
  /** Origins a browser connection may come from ("*": any); requests without Origin always pass. */
  readonly allowedOrigins: readonly string[];
  /** Open connections per client address on the machine (all workers). */
  readonly maxConnectionsPerIp: number;
  /** New connections per second per client address (steady rate) ... */
  readonly connectionRatePerIp: number;
  /** ... and the burst above it. */
  readonly connectionBurstPerIp: number;
  /** Registrations per second per client address (whatever the key) ... */
  readonly registrationRatePerIp: number;
  /** ... and the burst above it. */
  readonly registrationBurstPerIp: number;
  /** Proxies (CIDR or address list) whose X-Forwarded-For is believed. */
  readonly trustedProxies: readonly string[];
  /** Namespaces and rooms one peer may be in at once. */
  readonly maxScopesPerPeer: number;
  /** Rooms one peer may own at once. */
  readonly maxRoomsPerPeer: number;
  /** Match tickets one peer may have waiting at once. */
  readonly maxTicketsPerPeer: number;
  /** Largest match criteria, in bytes of JSON. */
  readonly maxCriteriaBytes: number;
  /** How long a peer kicked from a room may not join it again. */
  readonly kickBanMs: number;
  /**
   * How long a native peer whose connection dropped stays registered, in its namespaces and rooms,
   * waiting for a `register` with its resume token; 0 turns session resume off.
   */
  readonly resumeGraceMs: number;
  /** Targeted messages kept for a suspended peer, newest last; past it the oldest are dropped and counted. */
  readonly resumeBuffer: number;
}

type Kind =
  | { readonly type: "string"; readonly oneOf?: readonly string[] }
  | { readonly type: "int"; readonly min: number; readonly max: number; readonly powerOfTwo?: boolean }
  | { readonly type: "bool" }
  /** A list of strings: a JSON array, or a comma-separated string (always so from the environment). */
  | { readonly type: "list"; readonly oneOf?: readonly string[] }
  | { readonly type: "duration"; readonly minMs: number };

interface Option {
  /** Key in config.json, as the protocol document names it. */
  readonly file: string;
  readonly field: keyof Config;
  readonly kind: Kind;
  readonly default: Config[keyof Config];
  /** Environment variable that overrides the file, if any. */
  readonly env?: string;
}

const INT32 = 2 ** 31 - 1;

/** Every option, its default and its environment override: the single source of truth. */
export const OPTIONS: readonly Option[] = [
  { file: "host", field: "host", kind: { type: "string" }, default: "0.0.0.0", env: "PEER_HOST" },
  { file: "port", field: "port", kind: { type: "int", min: 0, max: 65_535 }, default: 8080, env: "PEER_PORT" },
  { file: "max_peers", field: "maxPeers", kind: { type: "int", min: 1, max: INT32 }, default: 100_000, env: "PEER_MAX_PEERS" },
  { file: "shard_count", field: "shardCount", kind: { type: "int", min: 1, max: 65_536, powerOfTwo: true }, default: 64 },
  { file: "write_timeout", field: "writeTimeoutMs", kind: { type: "duration", minMs: 1 }, default: 10_000 },
  { file: "shutdown_timeout", field: "shutdownTimeoutMs", kind: { type: "duration", minMs: 1 }, default: 10_000, env: "PEER_SHUTDOWN_TIMEOUT" },
  { file: "header_timeout", field: "headerTimeoutMs", kind: { type: "duration", minMs: 1 }, default: 10_000 },
  { file: "read_timeout", field: "readTimeoutMs", kind: { type: "duration", minMs: 1 }, default: 60_000 },
  { file: "ping_interval", field: "pingIntervalMs", kind: { type: "duration", minMs: 10 }, default: 30_000 },
  { file: "pong_wait", field: "pongWaitMs", kind: { type: "duration", minMs: 10 }, default: 35_000 },
  { file: "max_message_size", field: "maxMessageSize", kind: { type: "int", min: 256, max: 64 * 1024 * 1024 }, default: 65_536 },
  { file: "max_json_depth", field: "maxJsonDepth", kind: { type: "int", min: 4, max: 256 }, default: 32 },
  { file: "broker_type", field: "brokerType", kind: { type: "string", oneOf: ["local", "redis"] }, default: "local", env: "PEER_BROKER" },
  { file: "redis_addr", field: "redisAddr", kind: { type: "string" }, default: "localhost:6379", env: "REDIS_ADDR" },
  { file: "redis_password", field: "redisPassword", kind: { type: "string" }, default: "", env: "REDIS_PASSWORD" },
  { file: "redis_db", field: "redisDb", kind: { type: "int", min: 0, max: 15 }, default: 0 },
  { file: "redis_adapter", field: "redisAdapter", kind: { type: "string", oneOf: ["sharded", "classic"] }, default: "sharded", env: "PEER_REDIS_ADAPTER" },
  { file: "redis_mode", field: "redisMode", kind: { type: "string", oneOf: ["single", "cluster", "sentinel"] }, default: "single", env: "PEER_REDIS_MODE" },
  { file: "redis_sentinel_name", field: "redisSentinelName", kind: { type: "string" }, default: "mymaster", env: "REDIS_SENTINEL_NAME" },
  { file: "rate_limit_per_sec", field: "rateLimitPerSec", kind: { type: "int", min: 1, max: INT32 }, default: 100 },
  { file: "rate_limit_burst", field: "rateLimitBurst", kind: { type: "int", min: 1, max: INT32 }, default: 200 },
  { file: "rate_limit_shards", field: "rateLimitShards", kind: { type: "int", min: 1, max: 65_536 }, default: 32 },
  { file: "tls_cert", field: "tlsCert", kind: { type: "string" }, default: "", env: "TLS_CERT" },
  { file: "tls_key", field: "tlsKey", kind: { type: "string" }, default: "", env: "TLS_KEY" },
  { file: "metrics_enabled", field: "metricsEnabled", kind: { type: "bool" }, default: false, env: "PEER_METRICS_ENABLED" },
  { file: "metrics_port", field: "metricsPort", kind: { type: "int", min: 0, max: 65_535 }, default: 9090, env: "PEER_METRICS_PORT" },
  { file: "metrics_host", field: "metricsHost", kind: { type: "string" }, default: "127.0.0.1", env: "PEER_METRICS_HOST" },
  { file: "admin_token", field: "adminToken", kind: { type: "string" }, default: "", env: "PEER_ADMIN_TOKEN" },
  { file: "compression_enabled", field: "compressionEnabled", kind: { type: "bool" }, default: false, env: "PEER_COMPRESSION" },
  { file: "send_buffer_size", field: "sendBufferSize", kind: { type: "int", min: 1, max: 1_000_000 }, default: 32, env: "PEER_SEND_BUFFER" },
  { file: "workers", field: "workers", kind: { type: "int", min: 0, max: 256 }, default: 0, env: "PEER_WORKERS" },
  { file: "dialects", field: "dialects", kind: { type: "list", oneOf: ["pigeon", "p2p", "randomchat"] }, default: ["pigeon", "p2p", "randomchat"], env: "PEER_DIALECTS" },
  { file: "pigeon_auth_token", field: "pigeonAuthToken", kind: { type: "string" }, default: "", env: "PIGEON_AUTH_TOKEN" },
  { file: "pigeon_hub_mesh_namespace", field: "pigeonHubMeshNamespace", kind: { type: "string" }, default: "pigeonhub-mesh", env: "PIGEON_HUB_MESH_NAMESPACE" },
  { file: "pigeon_cors_origin", field: "pigeonCorsOrigin", kind: { type: "string" }, default: "", env: "PIGEON_CORS_ORIGIN" },
  { file: "randomchat_max_msg_per_second", field: "randomchatMaxMsgPerSecond", kind: { type: "int", min: 1, max: INT32 }, default: 40, env: "RANDOMCHAT_MAX_MSG_PER_SECOND" },
  { file: "randomchat_allowed_origins", field: "randomchatAllowedOrigins", kind: { type: "list" }, default: [], env: "RANDOMCHAT_ALLOWED_ORIGIN" },
  { file: "randomchat_requeue_on_partner_leave", field: "randomchatRequeueOnPartnerLeave", kind: { type: "bool" }, default: true, env: "RANDOMCHAT_REQUEUE_ON_PARTNER_LEAVE" },
  { file: "randomchat_auth_token", field: "randomchatAuthToken", kind: { type: "string" }, default: "", env: "RANDOMCHAT_AUTH_TOKEN" },
  { file: "turn_secret", field: "turnSecret", kind: { type: "string" }, default: "", env: "PEER_TURN_SECRET" },
  { file: "turn_urls", field: "turnUrls", kind: { type: "list" }, default: [], env: "PEER_TURN_URLS" },
  { file: "turn_ttl", field: "turnTtlMs", kind: { type: "duration", minMs: 60_000 }, default: 3_600_000, env: "PEER_TURN_TTL" },
  { file: "stun_urls", field: "stunUrls", kind: { type: "list" }, default: [], env: "PEER_STUN_URLS" },
  { file: "key_proof", field: "keyProof", kind: { type: "string", oneOf: ["off", "optional", "required"] }, default: "optional", env: "PEER_KEY_PROOF" },
  { file: "auth_jwt_secret", field: "authJwtSecret", kind: { type: "string" }, default: "", env: "PEER_AUTH_JWT_SECRET" },
  { file: "auth_jwt_public_key", field: "authJwtPublicKey", kind: { type: "string" }, default: "", env: "PEER_AUTH_JWT_PUBLIC_KEY" },
  { file: "auth_jwks_url", field: "authJwksUrl", kind: { type: "string" }, default: "", env: "PEER_AUTH_JWKS_URL" },
  { file: "auth_jwt_audience", field: "authJwtAudience", kind: { type: "string" }, default: "", env: "PEER_AUTH_JWT_AUDIENCE" },
  { file: "auth_jwt_issuer", field: "authJwtIssuer", kind: { type: "string" }, default: "", env: "PEER_AUTH_JWT_ISSUER" },
  { file: "allowed_origins", field: "allowedOrigins", kind: { type: "list" }, default: ["*"], env: "PEER_ALLOWED_ORIGINS" },
  { file: "max_connections_per_ip", field: "maxConnectionsPerIp", kind: { type: "int", min: 1, max: INT32 }, default: 256, env: "PEER_MAX_CONNECTIONS_PER_IP" },
  { file: "connection_rate_per_ip", field: "connectionRatePerIp", kind: { type: "int", min: 1, max: INT32 }, default: 20, env: "PEER_CONNECTION_RATE_PER_IP" },
  { file: "connection_burst_per_ip", field: "connectionBurstPerIp", kind: { type: "int", min: 1, max: INT32 }, default: 100, env: "PEER_CONNECTION_BURST_PER_IP" },
  { file: "registration_rate_per_ip", field: "registrationRatePerIp", kind: { type: "int", min: 1, max: INT32 }, default: 20, env: "PEER_REGISTRATION_RATE_PER_IP" },
  { file: "registration_burst_per_ip", field: "registrationBurstPerIp", kind: { type: "int", min: 1, max: INT32 }, default: 100, env: "PEER_REGISTRATION_BURST_PER_IP" },
  { file: "trusted_proxies", field: "trustedProxies", kind: { type: "list" }, default: [], env: "PEER_TRUSTED_PROXIES" },
  { file: "max_scopes_per_peer", field: "maxScopesPerPeer", kind: { type: "int", min: 1, max: INT32 }, default: 64, env: "PEER_MAX_SCOPES_PER_PEER" },
  { file: "max_rooms_per_peer", field: "maxRoomsPerPeer", kind: { type: "int", min: 1, max: INT32 }, default: 8, env: "PEER_MAX_ROOMS_PER_PEER" },
  { file: "max_tickets_per_peer", field: "maxTicketsPerPeer", kind: { type: "int", min: 1, max: INT32 }, default: 8, env: "PEER_MAX_TICKETS_PER_PEER" },
  { file: "max_criteria_bytes", field: "maxCriteriaBytes", kind: { type: "int", min: 2, max: 1_048_576 }, default: 1024, env: "PEER_MAX_CRITERIA_BYTES" },
  { file: "kick_ban", field: "kickBanMs", kind: { type: "duration", minMs: 0 }, default: 60_000, env: "PEER_KICK_BAN" },
  { file: "resume_grace", field: "resumeGraceMs", kind: { type: "duration", minMs: 0 }, default: 15_000, env: "PEER_RESUME_GRACE" },
  { file: "resume_buffer", field: "resumeBuffer", kind: { type: "int", min: 0, max: 100_000 }, default: 64, env: "PEER_RESUME_BUFFER" },
  {
    file: "log_level",
    field: "logLevel",
    kind: { type: "string", oneOf: ["fatal", "error", "warn", "info", "debug", "trace", "silent"] },
    default: "info",
    env: "PEER_LOG_LEVEL",
  },
];

/**
 * Checks one raw value (from JSON or from an environment string) against its option.
 * Returns the typed value or a message saying what is wrong.
 */
export function coerceOption(option: Option, raw: unknown, fromEnv: boolean): { value: unknown } | { problem: string } {
  const kind = option.kind;
  switch (kind.type) {
    case "string": {
      if (typeof raw !== "string") return { problem: "must be a string" };
      if (kind.oneOf && !kind.oneOf.includes(raw)) return { problem: `must be one of ${kind.oneOf.join(", ")}` };
      return { value: raw };
    }
    case "int": {
      const value = fromEnv && typeof raw === "string" && /^-?\d+$/.test(raw.trim()) ? Number(raw.trim()) : raw;
      if (typeof value !== "number" || !Number.isInteger(value)) return { problem: "must be an integer" };
      if (value < kind.min || value > kind.max) return { problem: `must be between ${kind.min} and ${kind.max}` };
      if (kind.powerOfTwo && (value & (value - 1)) !== 0) return { problem: "must be a power of two" };
      return { value };
    }
    case "bool": {
      if (typeof raw === "boolean") return { value: raw };
      if (fromEnv && typeof raw === "string") {
        const text = raw.trim().toLowerCase();
        if (["1", "true", "yes", "on"].includes(text)) return { value: true };
        if (["0", "false", "no", "off"].includes(text)) return { value: false };
      }
      return { problem: "must be a boolean" };
    }
    case "list": {
      const items = typeof raw === "string" ? raw.split(",").map((item) => item.trim()).filter((item) => item !== "") : raw;
      if (!Array.isArray(items) || !items.every((item): item is string => typeof item === "string")) return { problem: "must be a list of strings (a JSON array or a comma-separated string)" };
      const unknown = kind.oneOf === undefined ? [] : items.filter((item) => !kind.oneOf?.includes(item));
      if (unknown.length > 0) return { problem: `must name only ${kind.oneOf?.join(", ")} (not ${unknown.join(", ")})` };
      return { value: Object.freeze([...new Set(items)]) };
    }
    case "duration": {
      const ms = parseDurationMs(raw);
      if (ms === undefined) return { problem: 'must be a duration such as "10s", "500ms" or a number of milliseconds' };
      if (ms < kind.minMs) return { problem: `must be at least ${kind.minMs}ms` };
      return { value: ms };
    }
  }
}

/** Defaults of the options the original server's config files carry but this server has no use for. */
const INERT_DEFAULTS = { shardCount: 64, rateLimitShards: 32 } as const;

/**
 * Options the configuration sets that have no effect here, each with why: they are accepted so that
 * the original server's config files load unchanged, and named at start-up so that nobody relies on
 * them silently.
 */
export function inertOptions(config: Pick<Config, "shardCount" | "rateLimitShards">): string[] {
  const notes: string[] = [];
  if (config.shardCount !== INERT_DEFAULTS.shardCount) notes.push("shard_count: this server keeps no sharded peer maps; the value is ignored");
  if (config.rateLimitShards !== INERT_DEFAULTS.rateLimitShards) notes.push("rate_limit_shards: rate budgets are kept per connection, not in sharded maps; the value is ignored");
  return notes;
}
