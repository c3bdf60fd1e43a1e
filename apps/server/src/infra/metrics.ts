import { Counter, collectDefaultMetrics, Gauge, Registry } from "prom-client";
import { BatchHistogram } from "./histogram.ts";

type CallLabels = "tenant" | "model" | "channel" | "status";

/** One channel's live health, read when /metrics is scraped. */
export interface ChannelGaugeSample {
  tenant: string;
  channel: string;
  successRate: number;
  inFlight: number;
  /** 0 closed, 1 half-open, 2 open. */
  circuit: number;
}

export interface Metrics {
  registry: Registry;
  httpDuration: BatchHistogram;
  httpRequests: Counter<"method" | "route" | "status_code">;
  /** Counts one answered HTTP request; held back and added up per label set when /metrics is read. */
  httpRequest(method: string, route: string, statusCode: number, seconds: number): void;
  gatewayRequests: Counter<CallLabels>;
  gatewayDuration: BatchHistogram;
  gatewayTtft: BatchHistogram;
  gatewayTokens: Counter<"tenant" | "model" | "channel" | "type">;
  gatewayCost: Counter<"tenant" | "model" | "channel">;
  gatewayRejections: Counter<"kind" | "tenant">;
  /** Counts a request refused by a quota or a rate limit. */
  rejected(kind: "quota" | "rate_limit", tenant: string): void;
  /** Where the channel gauges read from at each scrape (set by the health module). */
  setChannelSource(source: () => Iterable<ChannelGaugeSample>): void;
  /** Runs `apply` before any gateway metric is read, so work held back lands in this scrape. */
  beforeScrape(apply: () => void): void;
  /** What /metrics answers: this registry, or in a cluster every worker's metrics combined. */
  exposition(): Promise<string>;
}

const LATENCY_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300];

/**
 * One registry per app, so several apps in one test process never collide. `aggregate` replaces what
 * /metrics answers (a cluster worker asks the primary for the sum over every worker).
 */
export function createMetrics(options: { aggregate?: () => Promise<string> } = {}): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "lyss_" });
  // Requests wait until a scrape (or a thousand of them) and are then counted once per label set.
  let held = new Map<string, { labels: Record<"method" | "route" | "status_code", string>; seconds: number[] }>();
  let heldCount = 0;
  const applyHeld = () => {
    if (heldCount === 0) return;
    const batch = held;
    held = new Map();
    heldCount = 0;
    for (const [key, { labels, seconds }] of batch) {
      httpRequests.inc(labels, seconds.length);
      const series = httpDuration.series(key, labels);
      for (const value of seconds) httpDuration.observe(series, value);
    }
  };
  const httpDuration = new BatchHistogram(
    "lyss_http_request_duration_seconds",
    "HTTP request duration in seconds by route",
    [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registry,
    applyHeld,
  );
  const httpRequests = new Counter({
    name: "lyss_http_requests_total",
    help: "HTTP requests by route and status",
    labelNames: ["method", "route", "status_code"] as const,
    registers: [registry],
    collect: applyHeld,
  });
  function httpRequest(method: string, route: string, statusCode: number, seconds: number) {
    const key = `${method} ${statusCode} ${route}`;
    let entry = held.get(key);
    if (!entry) {
      entry = { labels: { method, route, status_code: String(statusCode) }, seconds: [] };
      held.set(key, entry);
    }
    entry.seconds.push(seconds);
    if (++heldCount >= 1000) applyHeld();
  }
  const exposition = options.aggregate ?? (() => registry.metrics());
  return { registry, httpDuration, httpRequests, httpRequest, ...gatewayMetrics(registry), exposition };
}

/** Gateway calls, tokens and cost, rejections, and each channel's health. */
function gatewayMetrics(registry: Registry) {
  const callLabels = ["tenant", "model", "channel", "status"] as const;
  const registers = [registry];
  const pendingWork = new Set<() => void>();
  // Each gateway metric runs the held-back work when read; the first one read does it for all.
  const collect = () => {
    for (const apply of pendingWork) apply();
  };
  const gatewayRequests = new Counter({
    name: "lyss_gateway_requests_total",
    help: "Gateway calls by tenant, public model, channel (none when no channel answered) and HTTP status",
    labelNames: callLabels,
    registers,
    collect,
  });
  const gatewayDuration = new BatchHistogram(
    "lyss_gateway_request_duration_seconds",
    "Gateway call duration in seconds, failover included",
    LATENCY_BUCKETS,
    registry,
    collect,
  );
  const gatewayTtft = new BatchHistogram(
    "lyss_gateway_time_to_first_token_seconds",
    "Time to the first streamed content, in seconds",
    LATENCY_BUCKETS,
    registry,
    collect,
  );
  const gatewayTokens = new Counter({
    name: "lyss_gateway_tokens_total",
    help: "Tokens by tenant, public model, channel and type (prompt or completion)",
    labelNames: ["tenant", "model", "channel", "type"] as const,
    registers,
    collect,
  });
  const gatewayCost = new Counter({
    name: "lyss_gateway_cost_micro_usd_total",
    help: "Cost of gateway calls in micro-USD",
    labelNames: ["tenant", "model", "channel"] as const,
    registers,
    collect,
  });
  const gatewayRejections = new Counter({
    name: "lyss_gateway_rejections_total",
    help: "Requests refused by a quota or a rate limit",
    labelNames: ["kind", "tenant"] as const,
    registers,
  });
  let source: () => Iterable<ChannelGaugeSample> = () => [];
  // Over cluster workers (each has its own view of a channel), gauges combine as `aggregator` says.
  const channelGauge = (name: string, help: string, aggregator: "sum" | "average" | "max", value: (sample: ChannelGaugeSample) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ["tenant", "channel"] as const,
      registers,
      aggregator,
      collect() {
        this.reset();
        for (const sample of source()) this.set({ tenant: sample.tenant, channel: sample.channel }, value(sample));
      },
    });
  channelGauge("lyss_channel_success_rate", "Decaying success rate of each channel, 0 to 1", "average", (sample) => sample.successRate);
  channelGauge("lyss_channel_in_flight", "Requests in flight to each channel", "sum", (sample) => sample.inFlight);
  channelGauge(
    "lyss_channel_circuit_state",
    "Circuit breaker state of each channel: 0 closed, 1 half-open, 2 open",
    "max",
    (sample) => sample.circuit,
  );
  return {
    gatewayRequests,
    gatewayDuration,
    gatewayTtft,
    gatewayTokens,
    gatewayCost,
    gatewayRejections,
    rejected(kind: "quota" | "rate_limit", tenant: string) {
      gatewayRejections.inc({ kind, tenant });
    },
    setChannelSource(next: () => Iterable<ChannelGaugeSample>) {
      source = next;
    },
    beforeScrape(apply: () => void) {
      pendingWork.add(apply);
    },
  };
}
