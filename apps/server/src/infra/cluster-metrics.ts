import { AggregatorRegistry, type PrometheusContentType } from "prom-client";
import type { PrimaryLink } from "./cluster-rpc.ts";
import { createMetrics, type Metrics } from "./metrics.ts";

/**
 * A cluster worker's metrics: its own registry, which the primary collects (prom-client's
 * AggregatorRegistry answers the primary's requests), while /metrics answers the primary's sum over
 * every worker, whichever worker the scrape reached.
 */
export function createWorkerMetrics(link: PrimaryLink): Metrics {
  const metrics = createMetrics({ aggregate: () => link.call<string>("metrics") });
  // Constructing one registers the worker's listener for the primary's requests.
  new AggregatorRegistry();
  AggregatorRegistry.setRegistries([metrics.registry]);
  return metrics;
}

let aggregator: AggregatorRegistry<PrometheusContentType> | undefined;

/** In the primary: every worker's metrics, combined (counters and histograms summed). */
export function aggregateWorkerMetrics(): Promise<string> {
  aggregator ??= new AggregatorRegistry();
  return aggregator.clusterMetrics();
}
