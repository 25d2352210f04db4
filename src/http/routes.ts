import type { IncomingMessage, ServerResponse } from "node:http";

/** One server process's own figures. */
export interface WorkerStats {
  node_id: string;
  pid: number;
  connections: Record<string, number>;
  /** Fingerprints registered on this process; only on the admin listener (`GET /admin/stats?detail=peers`). */
  peers?: string[];
}

/** The deployment's figures, with one entry per worker. */
export interface StatsSnapshot {
  totalPeers: number;
  namespaces: Record<string, number>;
  workers: WorkerStats[];
}

/** What the HTTP endpoints report; supplied by the server wiring. */
export interface StatusSource {
  accepting(): boolean;
  /** Backends this process needs, each "up" or "down" (e.g. `{ redis: "down" }`); empty when there are none. */
  backends(): Record<string, "up" | "down">;
  maxPeers: number;
  /**
   * Figures for the whole deployment this process belongs to, with one entry per worker; with
   * `detail`, each worker lists its peers (for the admin API only: never on the public port).
   */
  snapshot(detail: boolean): Promise<StatsSnapshot>;
}

/** The body of `GET /stats` (and of the admin API's `GET /admin/stats`) for a snapshot. */
export function statsBody(snapshot: StatsSnapshot, maxPeers: number, startedAt: number): Record<string, unknown> {
  return {
    total_peers: snapshot.totalPeers,
    max_peers: maxPeers,
    namespaces: snapshot.namespaces,
    connections: sumConnections(snapshot.workers),
    workers: snapshot.workers,
    uptime_seconds: Math.floor((Date.now() - startedAt) / 1000),
  };
}

/** `GET /health` and `GET /stats`, with the documented JSON shapes. */
export function createHttpHandler(source: StatusSource, startedAt: number) {
  return (request: IncomingMessage, response: ServerResponse): void => {
    const path = (request.url ?? "/").split("?", 1)[0];
    if (request.method !== "GET" && request.method !== "HEAD") {
      send(response, 405, { error: "method not allowed" });
      return;
    }
    if (path === "/readyz") {
      const backends = source.backends();
      const ready = source.accepting() && Object.values(backends).every((state) => state === "up");
      send(response, ready ? 200 : 503, { ready, accepting: source.accepting(), backends });
      return;
    }
    if (path === "/health") {
      const backends = source.backends();
      const down = Object.values(backends).some((state) => state !== "up");
      const timestamp = Math.floor(Date.now() / 1000);
      if (down || !source.accepting()) {
        // Without the backend the peer count is unknown; say what is down instead.
        send(response, 503, { status: "unavailable", peers: null, max_peers: source.maxPeers, timestamp, backends });
        return;
      }
      // Up or down is decided as for /readyz, from the backends' state alone: a peer count that
      // cannot be read (say, a malformed key in Redis) leaves the count unknown, not the process unhealthy.
      const extra = Object.keys(backends).length > 0 ? { backends } : {};
      void source.snapshot(false).then(
        (snapshot) => send(response, 200, { status: "ok", peers: snapshot.totalPeers, max_peers: source.maxPeers, timestamp, ...extra }),
        (error: unknown) => send(response, 200, { status: "ok", peers: null, max_peers: source.maxPeers, timestamp, ...extra, error: String(error) }),
      );
      return;
    }
    if (path === "/stats") {
      // Totals only: which fingerprints are where is the operator's to know (the admin API's /admin/stats).
      void source.snapshot(false).then(
        (snapshot) => send(response, 200, statsBody(snapshot, source.maxPeers, startedAt)),
        (error: unknown) => send(response, 503, { error: String(error) }),
      );
      return;
    }
    send(response, 404, { error: "not found" });
  };
}

function sumConnections(workers: readonly WorkerStats[]): Record<string, number> {
  const total: Record<string, number> = {};
  for (const worker of workers) {
    for (const [transport, count] of Object.entries(worker.connections)) total[transport] = (total[transport] ?? 0) + count;
  }
  return total;
}

function send(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), "cache-control": "no-store" });
  response.end(text);
}
