import type { HistogramSeries } from "../../infra/histogram.ts";
import type { ChannelGaugeSample, Metrics } from "../../infra/metrics.ts";
import type { ChannelStats } from "../gateway/channel-stats.ts";
import type { UsageRecord } from "../usage/recorder.ts";

const CIRCUIT_VALUE = { closed: 0, half_open: 1, open: 2 } as const;

interface CallTotals {
  labels: { tenant: string; model: string; channel: string; status: string };
  duration: HistogramSeries;
  ttft: HistogramSeries;
  requests: number;
  prompt: number;
  completion: number;
  cost: number;
}

/**
 * Counts finished gateway calls (from the usage recorder's records, off the relay's hot path). Each
 * call adds to its label set's totals, which go to the counters when /metrics is read: one counter
 * update per set instead of several per call. A call with the labels of the one before adds to the
 * same totals without building and hashing its key; durations are observed one by one. No record is
 * kept: records held until the next scrape outlived young-generation collections and were copied and
 * promoted, a cost per call the collector paid.
 */
export function createGatewayMetricsRecorder(metrics: Metrics) {
  const totals = new Map<string, CallTotals>();
  // The labels of the call counted last (as values: the record itself is not kept), and its totals.
  let entry: CallTotals | undefined;
  let tenant = "";
  let model = "";
  let channelId: string | null = null;
  let statusCode = 0;

  function totalsFor(record: UsageRecord): CallTotals {
    const channel = record.channel_id ?? "none";
    const status = String(record.status_code);
    const key = `${record.tenant_id}\u0000${record.requested_model}\u0000${channel}\u0000${status}`;
    let found = totals.get(key);
    if (!found) {
      const labels = { tenant: record.tenant_id, model: record.requested_model, channel, status };
      found = {
        labels,
        duration: metrics.gatewayDuration.series(key, labels),
        ttft: metrics.gatewayTtft.series(key, labels),
        requests: 0,
        prompt: 0,
        completion: 0,
        cost: 0,
      };
      totals.set(key, found);
    }
    return found;
  }

  function apply() {
    for (const { labels, requests, prompt, completion, cost } of totals.values()) {
      metrics.gatewayRequests.inc(labels, requests);
      const usage = { tenant: labels.tenant, model: labels.model, channel: labels.channel };
      if (prompt > 0) metrics.gatewayTokens.inc({ ...usage, type: "prompt" }, prompt);
      if (completion > 0) metrics.gatewayTokens.inc({ ...usage, type: "completion" }, completion);
      metrics.gatewayCost.inc(usage, cost);
    }
    totals.clear();
    entry = undefined;
  }

  metrics.beforeScrape(apply);
  return {
    record(record: UsageRecord) {
      if (
        !entry ||
        record.tenant_id !== tenant ||
        record.requested_model !== model ||
        record.channel_id !== channelId ||
        record.status_code !== statusCode
      ) {
        entry = totalsFor(record);
        tenant = record.tenant_id;
        model = record.requested_model;
        channelId = record.channel_id;
        statusCode = record.status_code;
      }
      entry.requests++;
      entry.prompt += record.prompt_tokens;
      entry.completion += record.completion_tokens;
      // Cost arrives with pricing; a record may carry 0 or no cost at all.
      const cost = (record as { cost_micro_usd?: unknown }).cost_micro_usd;
      if (typeof cost === "number" && Number.isFinite(cost) && cost >= 0) entry.cost += cost;
      metrics.gatewayDuration.observe(entry.duration, record.latency_ms / 1000);
      if (record.ttft_ms !== null && record.ttft_ms !== undefined) metrics.gatewayTtft.observe(entry.ttft, record.ttft_ms / 1000);
    },
  };
}

/** Each channel this instance has seen (with its tenant known), for the channel gauges. */
export function* channelGaugeSamples(stats: ChannelStats): Iterable<ChannelGaugeSample> {
  for (const [channel, health] of stats.entries()) {
    if (!health.tenantId) continue;
    yield {
      tenant: health.tenantId,
      channel,
      successRate: health.successRate,
      inFlight: health.inFlight,
      circuit: CIRCUIT_VALUE[stats.circuit(channel)],
    };
  }
}
