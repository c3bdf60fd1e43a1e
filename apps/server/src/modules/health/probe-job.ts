import type { Redis } from "ioredis";
import type { Kysely } from "kysely";
import type { Logger } from "pino";
import type { ChannelsTable, Database } from "../../db/schema.ts";
import type { EventBus } from "../../infra/bus.ts";
import type { Clock } from "../../infra/clock.ts";
import { listChannels, tenantsWithProbedChannels } from "../channels/repository.ts";
import type { ChannelService } from "../channels/service.ts";
import type { ChannelStats } from "../gateway/channel-stats.ts";
import type { SettingsService } from "../settings/service.ts";
import type { AutoDisable } from "./auto-disable.ts";

/** Probe results go to every instance, so each one's breakers and last-probe times follow them. */
export const PROBE_TOPIC = "gateway.channel_probe";

interface ProbeMessage {
  channelId: string;
  tenantId: string;
  at: number;
  ok: boolean;
  latencyMs: number;
  status: number | null;
  error: string | null;
}

export interface ProbeJobDeps {
  db: Kysely<Database>;
  channels: ChannelService;
  settings: SettingsService;
  stats: ChannelStats;
  autoDisable: AutoDisable;
  bus: EventBus;
  redis: Redis | undefined;
  redisPrefix: string;
  clock: Clock;
  logger: Logger;
  /** Probes sent at once (default 8). */
  concurrency?: number;
}

/**
 * The scheduled health probes: on every tick, each active tenant's enabled and auto-disabled channels
 * whose `health_probe_interval_seconds` has passed get the same minimal request as the channel test
 * action. Results feed the breakers and statistics (on every instance, through the bus), re-enable an
 * auto-disabled channel that passes and auto-disable one whose credentials are refused. With Redis,
 * an instance probes a channel only after winning `SET NX PX` on a key for the channel and the
 * current interval, so one instance probes each channel per interval; without Redis the one process
 * probes.
 */
export function createProbeJob(deps: ProbeJobDeps) {
  const { db, channels, settings, stats, bus, redis, clock, logger } = deps;
  const concurrency = deps.concurrency ?? 8;
  const lastProbe = new Map<string, number>();
  const shutdown = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<string[]> | undefined;

  const unsubscribe = bus.subscribe(PROBE_TOPIC, (payload) => {
    const message = payload as ProbeMessage | null;
    if (!message?.channelId) return;
    lastProbe.set(message.channelId, Math.max(lastProbe.get(message.channelId) ?? 0, message.at));
    stats.assign(message.channelId, message.tenantId);
    stats.probed(message.channelId, {
      at: message.at,
      ok: message.ok,
      latencyMs: message.latencyMs,
      status: message.status,
      error: message.error,
    });
  });

  /** Whether this instance probes the channel in this interval. */
  async function claim(channelId: string, intervalMs: number, now: number): Promise<boolean> {
    if (!redis) return true;
    const key = `${deps.redisPrefix}probe:${channelId}:${Math.floor(now / intervalMs)}`;
    return (await redis.set(key, "1", "PX", intervalMs, "NX")) === "OK";
  }

  async function probe(tenantId: string, row: ChannelsTable): Promise<boolean> {
    let result: Awaited<ReturnType<ChannelService["test"]>>;
    try {
      result = await channels.test(tenantId, row.id, undefined, { signal: shutdown.signal });
    } catch (error) {
      // A channel without a model to test, or one deleted meanwhile: nothing to learn.
      logger.debug({ err: error, channel_id: row.id }, "channel not probed");
      return false;
    }
    if (shutdown.signal.aborted) return false;
    const message: ProbeMessage = {
      channelId: row.id,
      tenantId,
      at: clock.ms(),
      ok: result.ok,
      latencyMs: result.latency_ms,
      status: result.status,
      error: result.error,
    };
    bus.publish(PROBE_TOPIC, message);
    if (result.ok && row.status === "auto_disabled") await deps.autoDisable.enable(tenantId, row.id);
    if ((result.status === 401 || result.status === 403) && row.status === "enabled") {
      await deps.autoDisable.disable(tenantId, row.id, result.status, result.error ?? "refused");
    }
    return true;
  }

  async function cycle(): Promise<string[]> {
    const now = clock.ms();
    const due: { tenantId: string; row: ChannelsTable }[] = [];
    for (const tenantId of await tenantsWithProbedChannels(db)) {
      const intervalMs = Number((await settings.tenant(tenantId)).values.health_probe_interval_seconds) * 1000;
      for (const row of await listChannels(db, tenantId)) {
        if (row.status === "disabled") continue;
        if (now - (lastProbe.get(row.id) ?? Number.NEGATIVE_INFINITY) < intervalMs) continue;
        if (!(await claim(row.id, intervalMs, now))) continue;
        lastProbe.set(row.id, now);
        due.push({ tenantId, row });
      }
    }
    const probed: string[] = [];
    for (let index = 0; index < due.length && !shutdown.signal.aborted; index += concurrency) {
      const batch = due.slice(index, index + concurrency);
      const outcomes = await Promise.all(batch.map((item) => probe(item.tenantId, item.row)));
      batch.forEach((item, position) => {
        if (outcomes[position]) probed.push(item.row.id);
      });
    }
    return probed;
  }

  /** One cycle now; answers the ids of the channels probed. A cycle under way is joined, not repeated. */
  function runOnce(): Promise<string[]> {
    running ??= cycle().finally(() => {
      running = undefined;
    });
    return running;
  }

  return {
    runOnce,
    /** Ticks every `tickMs` (default 15 s); the timer does not keep the process alive. */
    start(tickMs = 15_000) {
      if (timer || shutdown.signal.aborted) return;
      timer = setInterval(() => {
        runOnce().catch((error: Error) => logger.error({ err: error }, "health probe cycle failed"));
      }, tickMs);
      timer.unref();
    },
    /** Stops the timer, ends the probes under way and waits for the cycle to finish. */
    async stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
      shutdown.abort();
      unsubscribe();
      await running?.catch(() => undefined);
    },
  };
}

export type ProbeJob = ReturnType<typeof createProbeJob>;
