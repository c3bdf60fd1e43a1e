import { describe, expect, it } from "vitest";
import { createMetrics } from "./metrics.ts";

/** The value of one sample in the registry's current state, read without a scrape's collection. */
async function sample(metrics: ReturnType<typeof createMetrics>, name: string, labels: Record<string, string>) {
  const metric = metrics.registry.getSingleMetric(name) as unknown as {
    hashMap: Record<string, { labels: Record<string, string>; value?: number; count?: number }>;
  };
  const entry = Object.values(metric.hashMap).find((item) => Object.entries(labels).every(([key, value]) => item.labels[key] === value));
  return entry?.value ?? entry?.count ?? 0;
}

describe("HTTP metrics", () => {
  it("hold requests back and count them per label set when /metrics is read", async () => {
    const metrics = createMetrics();
    for (let index = 0; index < 5; index++) metrics.httpRequest("POST", "/v1/chat/completions", 200, 0.004);
    metrics.httpRequest("POST", "/v1/chat/completions", 429, 0.001);
    metrics.httpRequest("GET", "/health", 200, 0.0005);
    // Nothing is counted until a scrape.
    expect(await sample(metrics, "lyss_http_requests_total", { route: "/v1/chat/completions", status_code: "200" })).toBe(0);
    const text = await metrics.exposition();
    expect(text).toMatch(/lyss_http_requests_total\{method="POST",route="\/v1\/chat\/completions",status_code="200"\} 5/);
    expect(text).toMatch(/lyss_http_requests_total\{method="POST",route="\/v1\/chat\/completions",status_code="429"\} 1/);
    expect(text).toMatch(/lyss_http_requests_total\{method="GET",route="\/health",status_code="200"\} 1/);
    expect(text).toMatch(
      /lyss_http_request_duration_seconds_bucket\{le="0.005",method="POST",route="\/v1\/chat\/completions",status_code="200"\} 5/,
    );
    expect(text).toMatch(/lyss_http_request_duration_seconds_count\{method="POST",route="\/v1\/chat\/completions",status_code="200"\} 5/);
    // A second scrape counts nothing twice.
    expect(await metrics.exposition()).toMatch(
      /lyss_http_requests_total\{method="POST",route="\/v1\/chat\/completions",status_code="200"\} 5/,
    );
  });

  it("adds them up after a thousand even when no one scrapes", async () => {
    const metrics = createMetrics();
    for (let index = 0; index < 1000; index++) metrics.httpRequest("POST", "/v1/chat/completions", 200, 0.002);
    expect(await sample(metrics, "lyss_http_requests_total", { route: "/v1/chat/completions", status_code: "200" })).toBe(1000);
    metrics.httpRequest("POST", "/v1/chat/completions", 200, 0.002);
    expect(await sample(metrics, "lyss_http_requests_total", { route: "/v1/chat/completions", status_code: "200" })).toBe(1000);
    expect(await metrics.exposition()).toMatch(
      /lyss_http_requests_total\{method="POST",route="\/v1\/chat\/completions",status_code="200"\} 1001/,
    );
  });
});
