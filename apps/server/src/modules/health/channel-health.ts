import type { Infra } from "../../context.ts";
import type { ChannelService } from "../channels/service.ts";
import type { ChannelStats } from "../gateway/channel-stats.ts";
import { channelGaugeSamples, createGatewayMetricsRecorder } from "../metrics/gateway-metrics.ts";
import type { SettingsService } from "../settings/service.ts";
import type { UsageRecorder } from "../usage/recorder.ts";
import { createAutoDisable } from "./auto-disable.ts";
import { createProbeJob } from "./probe-job.ts";

/**
 * Channel health and gateway metrics, wired together: auto-disable on refused credentials, the
 * scheduled probes (started by buildApp, not in tests unless asked), time-to-first-token samples and
 * the gateway metrics from each usage record, and the channel gauges read at every scrape.
 */
export function createChannelHealth(
  infra: Pick<Infra, "db" | "bus" | "redis" | "clock" | "logger" | "metrics" | "config">,
  deps: { channels: ChannelService; settings: SettingsService; stats: ChannelStats; usage: UsageRecorder },
) {
  const { stats } = deps;
  const { metrics } = infra;
  const autoDisable = createAutoDisable({ channels: deps.channels, stats, logger: infra.logger });
  const probes = createProbeJob({
    db: infra.db.kysely,
    channels: deps.channels,
    settings: deps.settings,
    stats,
    autoDisable,
    bus: infra.bus,
    redis: infra.redis,
    redisPrefix: infra.config.redisPrefix,
    clock: infra.clock,
    logger: infra.logger,
  });
  metrics.setChannelSource(() => channelGaugeSamples(stats));
  const gatewayMetrics = createGatewayMetricsRecorder(metrics);
  const stopRecords = deps.usage.onRecord((record) => {
    gatewayMetrics.record(record);
    if (!record.channel_id) return;
    stats.assign(record.channel_id, record.tenant_id);
    if (record.ttft_ms !== null && record.status_code < 400) stats.observeTtft(record.channel_id, record.ttft_ms);
  });

  return {
    autoDisable,
    probes,
    async close() {
      stopRecords();
      await probes.stop();
      await autoDisable.close();
    },
  };
}

export type ChannelHealthService = ReturnType<typeof createChannelHealth>;
