import { Counter, collectDefaultMetrics, Histogram, Registry } from "prom-client";

export interface Metrics {
  registry: Registry;
  httpDuration: Histogram<"method" | "route" | "status_code">;
  httpRequests: Counter<"method" | "route" | "status_code">;
}

/** One registry per app, so several apps in one test process never collide. */
export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "lyss_" });
  const httpDuration = new Histogram({
    name: "lyss_http_request_duration_seconds",
    help: "HTTP request duration in seconds by route",
    labelNames: ["method", "route", "status_code"] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const httpRequests = new Counter({
    name: "lyss_http_requests_total",
    help: "HTTP requests by route and status",
    labelNames: ["method", "route", "status_code"] as const,
    registers: [registry],
  });
  return { registry, httpDuration, httpRequests };
}
