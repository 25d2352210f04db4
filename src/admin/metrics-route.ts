import type { AdminRoute } from "./router.ts";

/** A Prometheus exposition: its content type and text. */
export interface Scrape {
  readonly contentType: string;
  readonly body: string;
}

/**
 * `GET /metrics`: what `scrape` gives, in the Prometheus text format. A scrape that fails (a
 * cluster worker that did not answer in time) is 503 with the reason, so Prometheus records the
 * target as down for that scrape rather than half a machine.
 */
export function metricsRoute(scrape: () => Promise<Scrape>): AdminRoute {
  return {
    method: "GET",
    path: "/metrics",
    async handle(_request, response) {
      let result: Scrape;
      try {
        result = await scrape();
      } catch (error) {
        const text = `scrape failed: ${(error as Error).message}\n`;
        response.writeHead(503, { "content-type": "text/plain; charset=utf-8", "content-length": Buffer.byteLength(text), "cache-control": "no-store" });
        response.end(text);
        return;
      }
      response.writeHead(200, { "content-type": result.contentType, "content-length": Buffer.byteLength(result.body), "cache-control": "no-store" });
      response.end(result.body);
    },
  };
}
