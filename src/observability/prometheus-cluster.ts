import { AggregatorRegistry, collectDefaultMetrics, Registry } from "prom-client";

/**
 * One scrape for the whole machine, through prom-client's cluster aggregation: the primary asks
 * every connected worker over Node's cluster IPC (`{type: "prom-client:getMetricsReq", requestId}`,
 * answered with `prom-client:getMetricsRes` and the same id; at most 5 s, then the scrape fails) and
 * merges their registries' samples: counters, gauges and histograms are summed by their labels
 * (`peer_server_redis_up` takes the lowest), so the workers' own metrics read as the machine's, and
 * each worker's default process metrics keep their `worker` label. These messages have no `ps`:
 * the project's IPC guards (protocol/cluster-messages.ts) pass them by without a word, and
 * prom-client ignores ours.
 */

/** Makes this cluster worker answer the primary's scrapes with `registry`. Call once, early, in each worker. */
export function answerPrimaryScrapes(registry: Registry): void {
  AggregatorRegistry.setRegistries(registry);
  // Constructing one is what installs prom-client's responder (a process 'message' listener) in a worker.
  new AggregatorRegistry();
}

/** The cluster primary's side of the machine's scrape. */
export class MachineScrape {
  private readonly aggregator = new AggregatorRegistry();
  /** The primary's own process metrics, under a name prefix of their own: they are not the workers' to be summed with. */
  private readonly own = new Registry();

  constructor() {
    collectDefaultMetrics({ register: this.own, prefix: PRIMARY_PREFIX });
  }

  /** Every worker's metrics aggregated, then the primary's own; rejects when a worker does not answer in time. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    const [workers, own] = await Promise.all([this.aggregator.clusterMetrics(), this.own.metrics()]);
    return { contentType: this.own.contentType, body: workers === "" ? own : `${workers}\n${own}` };
  }
}

/** The prefix of the primary's own process metrics (`peer_server_primary_process_cpu_seconds_total`, ...). */
export const PRIMARY_PREFIX = "peer_server_primary_";
