import type { IncomingMessage, ServerResponse } from "node:http";
import type { Config } from "../../config/load.ts";
import { originPolicy } from "../../trust/origins.ts";
import { sendJson, type DeploymentFigures, type DialectDeps } from "../dialect.ts";
import { DISCOVERY_LIMIT, networkOf, peerIdOf, readMeta, scopeOf } from "./wire.ts";

/**
 * PeerPigeon's HTTP endpoints under `/pigeon`, in the originals' shapes. Every count is the whole
 * deployment's, every worker and node (like `/stats`): `connections` are PeerPigeon WebSocket
 * connections, `peers` registered PeerPigeon peers, `networks` networks with a member, `hubs` the
 * members of the hub-mesh network. This server is no PeerPigeon hub itself (`isHub` false, no hub
 * peerId) and has no bootstrap hubs: the mesh between its processes is the cluster and Redis.
 */
export function createPigeonHttp(deps: DialectDeps): (path: string, request: IncomingMessage, response: ServerResponse) => boolean {
  const { config } = deps;
  const hubScope = scopeOf(config.pigeonHubMeshNamespace);
  const headers = corsHeaders(config);
  const uptime = (): number => Date.now() - deps.startedAt;

  const counts = async () => {
    const figures = await deps.deployment();
    const networks = networkCounts(figures);
    return {
      connections: figures.connections["pigeon"] ?? 0,
      peers: figures.peersByKind["pigeon"] ?? 0,
      hubs: figures.namespaces[hubScope] ?? 0,
      networks,
      networkCount: Object.keys(networks).length,
    };
  };

  /** The hub-mesh network's members in the originals' hub record, capitalised keys included. */
  const hubList = async () => {
    const page = await deps.members(hubScope, DISCOVERY_LIMIT);
    const hubs = [];
    for (const member of page.peers) {
      const peerId = peerIdOf(member.fingerprint);
      if (peerId === undefined) continue;
      const announced = readMeta(member.meta);
      // Announcing is the last activity the server records of a hub.
      hubs.push({ PeerId: peerId, RegisteredAt: announced.at, LastActivity: announced.at, NetworkName: config.pigeonHubMeshNamespace, Data: announced.data });
    }
    return { total: page.total, hubs };
  };

  const routes: Record<string, (request: IncomingMessage) => Promise<unknown>> = {
    "/pigeon/health": async () => {
      const c = await counts();
      return { status: "healthy", timestamp: rfc3339(), uptime: uptime(), isHub: false, connections: c.connections, peers: c.peers, hubs: c.hubs, networks: c.networkCount };
    },
    "/pigeon/stats": async (request) => {
      const c = await counts();
      return {
        isRunning: deps.hub.isAccepting,
        isHub: false,
        hubPeerId: "",
        hubMeshNamespace: config.pigeonHubMeshNamespace,
        connections: c.connections,
        peers: c.peers,
        hubs: c.hubs,
        networks: c.networkCount,
        bootstrapHubs: { total: 0, connected: 0 },
        maxConnections: config.maxPeers,
        uptime: uptime(),
        host: config.host,
        port: request.socket.localPort ?? config.port,
      };
    },
    "/pigeon/hubs": async () => {
      const list = await hubList();
      return { timestamp: rfc3339(), totalHubs: list.total, hubs: list.hubs };
    },
    "/pigeon/hubstats": async () => {
      const list = await hubList();
      return { totalHubs: list.total, connectedHubs: list.total, hubs: list.hubs, bootstrapHubs: [] };
    },
    "/pigeon/metrics": async () => {
      const c = await counts();
      return {
        timestamp: rfc3339(),
        uptime_ms: uptime(),
        server: { is_hub: false, namespace: config.pigeonHubMeshNamespace, region: "", app_name: "peer-server" },
        connections: { active: c.connections, max: config.maxPeers },
        peers: { total: c.peers, networks: c.networks },
        hubs: { discovered: c.hubs, bootstrap_connected: 0 },
        networks: c.networkCount,
      };
    },
  };

  return (path, request, response) => {
    const route = Object.hasOwn(routes, path) ? routes[path] : undefined;
    if (route === undefined) return false;
    route(request).then(
      (body) => sendJson(response, 200, body, headers(request)),
      () => sendJson(response, 503, { status: "unavailable", error: "deployment figures unavailable" }, headers(request)),
    );
    return true;
  };
}

/** Members of each PeerPigeon network, by network name. */
function networkCounts(figures: DeploymentFigures): Record<string, number> {
  const counts: [string, number][] = [];
  for (const [scope, members] of Object.entries(figures.namespaces)) {
    const network = networkOf(scope);
    if (network !== undefined && members > 0) counts.push([network, members]);
  }
  // fromEntries defines each key: a network named "__proto__" is listed like any other.
  return Object.fromEntries(counts);
}

/** Now in RFC 3339 to the second, as the Go original writes it. */
const rfc3339 = (): string => new Date().toISOString().replace(/\.\d{3}Z$/, "Z");

/**
 * The CORS headers of an answer: `pigeon_cors_origin` when it is set, as the originals send it;
 * otherwise `allowed_origins` decides: `*` when it allows every origin, else the request's Origin
 * named back when it is allowed (and none when it is not).
 */
function corsHeaders(config: Pick<Config, "pigeonCorsOrigin" | "allowedOrigins">): (request: IncomingMessage) => Record<string, string> {
  if (config.pigeonCorsOrigin !== "") {
    const fixed = { "access-control-allow-origin": config.pigeonCorsOrigin };
    return () => fixed;
  }
  const origins = originPolicy(config.allowedOrigins);
  if (origins.allowsAll) {
    const any = { "access-control-allow-origin": "*" };
    return () => any;
  }
  const none: Record<string, string> = { vary: "Origin" };
  return (request) => {
    const origin = request.headers.origin;
    return origin !== undefined && origins.allowed(origin) ? { "access-control-allow-origin": origin, vary: "Origin" } : none;
  };
}
