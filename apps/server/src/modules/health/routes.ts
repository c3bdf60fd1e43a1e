import { type TChannelStats, ZChannelStats } from "@lyss/contracts";
import { requireTenant } from "../auth/guard.ts";
import type { ChannelService } from "../channels/service.ts";
import type { ChannelStats } from "../gateway/channel-stats.ts";
import { type Api, AUTHED_ERRORS, ZIdParams } from "../http.ts";
import type { Percentiles } from "./sample-window.ts";

const iso = (ms: number | null | undefined) => (ms ? new Date(ms).toISOString() : null);
const round = (value: number | null) => (value === null ? null : Math.round(value));
const rounded = (p: Percentiles) => ({ samples: p.samples, p50: round(p.p50), p90: round(p.p90), p99: round(p.p99) });

/** A channel's live statistics as the API shows them. */
export function channelStatsView(
  stats: ChannelStats,
  channel: { id: string; status: TChannelStats["status"]; status_reason: string | null },
) {
  const now = stats.now();
  const health = stats.get(channel.id);
  const breaker = health.breaker;
  const state = stats.circuit(channel.id);
  const window = breaker?.window(now) ?? { requests: 0, failures: 0 };
  return {
    channel_id: channel.id,
    status: channel.status,
    status_reason: channel.status_reason,
    circuit: {
      state,
      consecutive_failures: health.consecutiveFailures,
      opened_at: state === "closed" ? null : iso(breaker?.openedAt),
      cooldown_ms: breaker?.cooldownMs ?? 0,
      retry_at: iso(breaker?.retryAt(now)),
    },
    in_flight: health.inFlight,
    requests: health.requests,
    failures: health.failures,
    success_rate: Number(health.successRate.toFixed(4)),
    window: {
      seconds: Math.round((breaker?.windowMs ?? 0) / 1000),
      requests: window.requests,
      failures: window.failures,
      error_rate: window.requests ? Number((window.failures / window.requests).toFixed(4)) : null,
    },
    latency_ms: {
      ...rounded(health.latency.percentiles(now)),
      average: Math.round(health.latencyMs),
      peak: Math.round(health.peakLatencyMs),
    },
    ttft_ms: rounded(health.ttft.percentiles(now)),
    credentials_failing: health.credentialsFailing,
    cooling_down: stats.isCooling(channel.id),
    last_error: health.lastError,
    last_probe: health.lastProbe && {
      at: new Date(health.lastProbe.at).toISOString(),
      ok: health.lastProbe.ok,
      latency_ms: health.lastProbe.latencyMs,
      status: health.lastProbe.status,
      error: health.lastProbe.error,
    },
  } satisfies TChannelStats;
}

export function channelStatsRoutes(app: Api, channels: ChannelService, stats: ChannelStats) {
  app.get(
    "/api/v1/channels/:id/stats",
    {
      config: { access: { tenant: "admin" as const } },
      schema: {
        tags: ["channels"],
        summary: "A channel's live statistics: circuit breaker, success rate, latency and time-to-first-token percentiles",
        description:
          "As this instance has seen them: requests it relayed and the scheduled probes of every instance. Percentiles cover the last five minutes.",
        params: ZIdParams,
        response: { 200: ZChannelStats, ...AUTHED_ERRORS },
      },
    },
    async (request) => channelStatsView(stats, await channels.get(requireTenant(request).tenant.id, request.params.id)),
  );
}
