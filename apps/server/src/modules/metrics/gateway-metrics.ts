import type { UsageLogsTable } from "../../db/schema.ts";
import type { ChannelGaugeSample, Metrics } from "../../infra/metrics.ts";
import type { ChannelStats } from "../gateway/channel-stats.ts";

const CIRCUIT_VALUE = { closed: 0, half_open: 1, open: 2 } as const;

/** Counts one finished gateway call (from the usage recorder's records, off the relay's hot path). */
export function recordGatewayMetrics(metrics: Metrics, record: UsageLogsTable) {
  const channel = record.channel_id ?? "none";
  const labels = { tenant: record.tenant_id, model: record.requested_model, channel, status: String(record.status_code) };
  metrics.gatewayRequests.inc(labels);
  metrics.gatewayDuration.observe(labels, record.latency_ms / 1000);
  if (record.ttft_ms !== null && record.ttft_ms !== undefined) metrics.gatewayTtft.observe(labels, record.ttft_ms / 1000);
  const usage = { tenant: record.tenant_id, model: record.requested_model, channel };
  if (record.prompt_tokens > 0) metrics.gatewayTokens.inc({ ...usage, type: "prompt" }, record.prompt_tokens);
  if (record.completion_tokens > 0) metrics.gatewayTokens.inc({ ...usage, type: "completion" }, record.completion_tokens);
  // Cost arrives with pricing; until then a record may carry 0 or no cost at all.
  const cost = (record as { cost_micro_usd?: unknown }).cost_micro_usd;
  if (typeof cost === "number" && Number.isFinite(cost) && cost >= 0) metrics.gatewayCost.inc(usage, cost);
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
