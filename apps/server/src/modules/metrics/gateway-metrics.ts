import type { UsageLogsTable } from "../../db/schema.ts";
import type { HistogramSeries } from "../../infra/histogram.ts";
import type { ChannelGaugeSample, Metrics } from "../../infra/metrics.ts";
import type { ChannelStats } from "../gateway/channel-stats.ts";

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

/** Whether two calls are counted under the same labels. */
const sameLabels = (a: UsageLogsTable, b: UsageLogsTable) =>
  a.tenant_id === b.tenant_id &&
  a.requested_model === b.requested_model &&
  a.channel_id === b.channel_id &&
  a.status_code === b.status_code;

/** Records held back at most, before they are added up anyway. */
const MAX_PENDING = 1000;

/**
 * Counts finished gateway calls (from the usage recorder's records, off the relay's hot path). The
 * records wait until /metrics is read (or a thousand have gathered) and are then added up per label
 * set: one counter update per set instead of several per call. Durations are observed one by one.
 */
export function createGatewayMetricsRecorder(metrics: Metrics) {
  let pending: UsageLogsTable[] = [];

  function apply() {
    if (pending.length === 0) return;
    const batch = pending;
    pending = [];
    const totals = new Map<string, CallTotals>();
    // Consecutive calls mostly share their labels: such a call adds to the entry before it without
    // building and hashing the key again.
    let last: UsageLogsTable | undefined;
    let entry: CallTotals | undefined;
    function totalsFor(record: UsageLogsTable): CallTotals {
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
    for (const record of batch) {
      if (!entry || !last || !sameLabels(last, record)) entry = totalsFor(record);
      last = record;
      entry.requests++;
      entry.prompt += record.prompt_tokens;
      entry.completion += record.completion_tokens;
      // Cost arrives with pricing; a record may carry 0 or no cost at all.
      const cost = (record as { cost_micro_usd?: unknown }).cost_micro_usd;
      if (typeof cost === "number" && Number.isFinite(cost) && cost >= 0) entry.cost += cost;
      metrics.gatewayDuration.observe(entry.duration, record.latency_ms / 1000);
      if (record.ttft_ms !== null && record.ttft_ms !== undefined) metrics.gatewayTtft.observe(entry.ttft, record.ttft_ms / 1000);
    }
    for (const { labels, requests, prompt, completion, cost } of totals.values()) {
      metrics.gatewayRequests.inc(labels, requests);
      const usage = { tenant: labels.tenant, model: labels.model, channel: labels.channel };
      if (prompt > 0) metrics.gatewayTokens.inc({ ...usage, type: "prompt" }, prompt);
      if (completion > 0) metrics.gatewayTokens.inc({ ...usage, type: "completion" }, completion);
      metrics.gatewayCost.inc(usage, cost);
    }
  }

  metrics.beforeScrape(apply);
  return {
    record(record: UsageLogsTable) {
      pending.push(record);
      if (pending.length >= MAX_PENDING) apply();
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
