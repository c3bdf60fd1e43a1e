import type { ChatRequest } from "@lyss/llm";
import { textOf } from "@lyss/llm";
import type { Kysely } from "kysely";
import type { Database } from "../../db/schema.ts";
import type { Clock } from "../../infra/clock.ts";
import type { PrincipalCache } from "../auth/principal-cache.ts";
import type { RuntimeChannel } from "../channels/catalog.ts";
import { GatewayError } from "../gateway/gateway-error.ts";
import { costOf, type PriceBook } from "../pricing/service.ts";
import type { SettingsService } from "../settings/service.ts";
import { type Limit, parseLimits, type RuntimeToken } from "../tokens/token-cache.ts";
import type { Charge, QuotaStore } from "./store.ts";
import { type Window, windowBucket } from "./windows.ts";

export type Scope = "token" | "member" | "tenant" | "channel";

export interface Amounts {
  requests: number;
  tokens: number;
  cost_micro_usd: number;
}

export interface Reservation {
  tenantId: string;
  charges: Charge[];
  /** The metric each charge counts, in the same order. */
  metrics: Limit["metric"][];
  /** Each counter's used + reserved right after the reservation, in the same order. */
  totals: number[];
  estimate: Amounts;
}

export interface LimitStatus extends Limit {
  used: number;
  reserved: number;
  resets_at: string | null;
}

/** Fractions of a limit whose crossing is announced. */
export const THRESHOLDS = [0.8, 1] as const;

export interface ThresholdEvent {
  tenantId: string;
  key: string;
  scope: Scope;
  scopeId: string;
  metric: Limit["metric"];
  window: Window;
  max: number;
  used: number;
  threshold: (typeof THRESHOLDS)[number];
}

/** `scope:scopeId:metric:window:bucket`, where a member's scope id is `tenant:user`. */
function parseKey(key: string): [Scope, string, Limit["metric"], Window] {
  const parts = key.split(":");
  parts.pop();
  const window = parts.pop() as Window;
  const metric = parts.pop() as Limit["metric"];
  const scope = parts.shift() as Scope;
  return [scope, parts.join(":"), metric, window];
}

const TTL: Record<Window, number> = { total: 0, day: 3 * 24 * 3600, month: 40 * 24 * 3600 };

/** Characters per token for the admission estimate; settled with the real count afterwards. */
const CHARS_PER_TOKEN = 3;

/** The header that answers what is left of the token's own limits of each metric. */
const REMAINING_HEADER: Record<Limit["metric"], string> = {
  requests: "x-lyss-quota-remaining-requests",
  tokens: "x-lyss-quota-remaining-tokens",
  cost_micro_usd: "x-lyss-quota-remaining-cost-micro-usd",
};

/**
 * Multi-dimensional quotas. Admission reserves an estimate against every limit of the token, the
 * member and the tenant at once (all or none); the answer settles the reservation to what was
 * actually used. Channel limits are checked at admission and charged when the channel served.
 */
export function createQuotaService(deps: {
  db: Kysely<Database>;
  store: QuotaStore;
  clock: Clock;
  settings: SettingsService;
  prices: PriceBook;
  principals: PrincipalCache;
}) {
  const { db, store, clock, settings, prices, principals } = deps;
  /** Settled amounts not yet in the database, written with the next usage batch. */
  let pending = new Map<string, { tenantId: string; delta: number }>();
  const thresholdListeners = new Set<(event: ThresholdEvent) => void>();

  /** Tells listeners about every limit whose settled use just crossed 80 % or 100 % of its maximum. */
  function checkThresholds(crossed: { key: string; tenantId: string; max: number; before: number; after: number }[]) {
    for (const item of crossed) {
      for (const threshold of THRESHOLDS) {
        const line = item.max * threshold;
        if (item.before < line && item.after >= line) {
          const [scope, scopeId, metric, window] = parseKey(item.key);
          for (const listener of thresholdListeners)
            listener({
              tenantId: item.tenantId,
              key: item.key,
              scope,
              scopeId,
              metric,
              window,
              max: item.max,
              used: item.after,
              threshold,
            });
        }
      }
    }
  }

  async function timeZone(tenantId: string): Promise<string> {
    return String((await settings.tenant(tenantId)).values.time_zone ?? "UTC");
  }

  const keyOf = (scope: Scope, scopeId: string, limit: Limit, bucket: string) =>
    `${scope}:${scopeId}:${limit.metric}:${limit.window}:${bucket}`;

  async function seed(keys: { key: string; ttl: number }[]) {
    const missing = keys.filter((item) => !store.known(item.key));
    if (missing.length === 0) return;
    const rows = await db
      .selectFrom("quota_counters")
      .select(["key", "used"])
      .where(
        "key",
        "in",
        missing.map((item) => item.key),
      )
      .execute();
    const used = new Map(rows.map((row) => [row.key, Number(row.used)]));
    for (const item of missing) await store.seed(item.key, used.get(item.key) ?? 0, item.ttl);
  }

  async function scopedLimits(token: RuntimeToken) {
    const memberships = await principals.memberships(token.userId);
    const membership = memberships.find((item) => item.tenant.id === token.tenantId);
    const tenant = membership?.tenant ?? (await principals.tenant(token.tenantId));
    return [
      ...token.limits.map((limit) => ({ scope: "token" as const, scopeId: token.id, limit })),
      ...parseLimits(membership?.limits).map((limit) => ({
        scope: "member" as const,
        scopeId: `${token.tenantId}:${token.userId}`,
        limit,
      })),
      ...parseLimits(tenant?.limits).map((limit) => ({ scope: "tenant" as const, scopeId: token.tenantId, limit })),
    ];
  }

  function estimate(token: RuntimeToken, body: ChatRequest, maxTokensCap: number, multiplier: number): Amounts {
    const promptChars = body.messages.reduce((sum, message) => sum + textOf(message.content).length + 4, 0);
    const prompt = Math.ceil(promptChars / CHARS_PER_TOKEN);
    const completion = Number(body.max_completion_tokens ?? body.max_tokens ?? maxTokensCap);
    const price = prices.priceFor(token.tenantId, body.model);
    const usage = { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
    return { requests: 1, tokens: prompt + completion, cost_micro_usd: costOf(price, usage, multiplier) };
  }

  return {
    keyOf,

    /** The tenant's multiplier times the channel group's, from the platform settings. */
    async multiplier(tenantId: string, group: string | undefined): Promise<number> {
      const values = (await settings.platform()).values;
      const tenant = (values.tenant_price_multipliers as Record<string, number> | undefined)?.[tenantId] ?? 1;
      const byGroup = group ? ((values.group_price_multipliers as Record<string, number> | undefined)?.[group] ?? 1) : 1;
      return tenant * byGroup;
    },

    /** What a request is expected to use: its prompt by size plus its completion allowance. */
    async estimate(token: RuntimeToken, body: ChatRequest, multiplier: number): Promise<Amounts> {
      const tenantValues = (await settings.tenant(token.tenantId)).values;
      return estimate(token, body, Number(tenantValues.quota_default_max_tokens ?? 4096), multiplier);
    },

    /** Reserves the request's estimate against every applicable limit, or refuses with a 429. */
    async admit(token: RuntimeToken, amounts: Amounts): Promise<Reservation> {
      const limits = await scopedLimits(token);
      const reservation: Reservation = { tenantId: token.tenantId, charges: [], metrics: [], totals: [], estimate: amounts };
      if (limits.length === 0) return reservation;
      const zone = await timeZone(token.tenantId);
      const now = clock.now();
      for (const { scope, scopeId, limit } of limits) {
        const { bucket } = windowBucket(limit.window, now, zone);
        reservation.charges.push({
          key: keyOf(scope, scopeId, limit, bucket),
          tenantId: token.tenantId,
          max: limit.max,
          amount: reservation.estimate[limit.metric],
          ttlSeconds: TTL[limit.window],
        });
        reservation.metrics.push(limit.metric);
      }
      await seed(reservation.charges.map((charge) => ({ key: charge.key, ttl: charge.ttlSeconds })));
      const result = await store.reserve(reservation.charges);
      if (result.ok) reservation.totals = result.totals;
      if (!result.ok) {
        const [scope, , metric, window] = parseKey(result.key);
        throw new GatewayError(
          429,
          `You exceeded your current quota: the ${scope} ${window === "total" ? "" : `${window}ly `}${metric} limit is reached.`,
          "insufficient_quota",
          "insufficient_quota",
        );
      }
      return reservation;
    },

    /**
     * What was left of the token's own limits right after this reservation, per metric (the tightest
     * window), as `x-lyss-quota-remaining-<metric>` headers.
     */
    remainingHeaders(reservation: Reservation, tokenId: string): Record<string, string> {
      const headers: Record<string, string> = {};
      const least = new Map<string, number>();
      const own = `token:${tokenId}:`;
      reservation.charges.forEach((charge, index) => {
        if (!charge.key.startsWith(own)) return;
        const left = Math.max(0, charge.max - (reservation.totals[index] ?? 0));
        const name = REMAINING_HEADER[reservation.metrics[index] as Limit["metric"]];
        if (!least.has(name) || left < (least.get(name) ?? 0)) least.set(name, left);
      });
      for (const [name, left] of least) headers[name] = String(left);
      return headers;
    },

    /** Channels whose own limits are used up are left out of routing. */
    async withinChannelLimits(channels: RuntimeChannel[], tenantId: string): Promise<RuntimeChannel[]> {
      const limited = channels.filter((channel) => channel.limits.length > 0);
      if (limited.length === 0) return channels;
      const zone = await timeZone(tenantId);
      const now = clock.now();
      const keys = limited.flatMap((channel) =>
        channel.limits.map((limit) => ({
          channel,
          limit,
          key: keyOf("channel", channel.id, limit, windowBucket(limit.window, now, zone).bucket),
        })),
      );
      await seed(keys.map((item) => ({ key: item.key, ttl: TTL[item.limit.window] })));
      const state = await store.read(keys.map((item) => item.key));
      const exhausted = new Set(
        keys
          .filter((item) => (state.get(item.key)?.used ?? 0) + (state.get(item.key)?.reserved ?? 0) >= item.limit.max)
          .map((item) => item.channel.id),
      );
      return channels.filter((channel) => !exhausted.has(channel.id));
    },

    /** Turns the reservation into actual use (releasing the rest) and charges the serving channel. */
    async settle(reservation: Reservation, actual: Amounts, channel: RuntimeChannel | undefined): Promise<void> {
      const settlements = reservation.charges.map((charge, index) => ({
        key: charge.key,
        tenantId: charge.tenantId,
        reserved: charge.amount,
        used: actual[reservation.metrics[index] as Limit["metric"]],
        ttlSeconds: charge.ttlSeconds,
      }));
      if (channel && channel.limits.length > 0) {
        const zone = await timeZone(reservation.tenantId);
        for (const limit of channel.limits) {
          const key = keyOf("channel", channel.id, limit, windowBucket(limit.window, clock.now(), zone).bucket);
          settlements.push({ key, tenantId: reservation.tenantId, reserved: 0, used: actual[limit.metric], ttlSeconds: TTL[limit.window] });
        }
      }
      if (settlements.length === 0) return;
      const maxima = new Map(reservation.charges.map((charge) => [charge.key, charge.max]));
      for (const limit of channel?.limits ?? []) {
        const zone = await timeZone(reservation.tenantId);
        maxima.set(keyOf("channel", channel?.id ?? "", limit, windowBucket(limit.window, clock.now(), zone).bucket), limit.max);
      }
      // The store answers each counter's use after this settlement, so crossings need no extra read.
      const after = await store.settle(settlements);
      if (thresholdListeners.size > 0) {
        checkThresholds(
          settlements
            .map((item, index) => ({ item, after: after[index] ?? 0 }))
            .filter(({ item }) => item.used > 0 && maxima.has(item.key))
            .map(({ item, after: used }) => ({
              key: item.key,
              tenantId: item.tenantId,
              max: maxima.get(item.key) ?? 0,
              before: used - item.used,
              after: used,
            })),
        );
      }
      for (const item of settlements) {
        if (item.used === 0) continue;
        const entry = pending.get(item.key) ?? { tenantId: item.tenantId, delta: 0 };
        entry.delta += item.used;
        pending.set(item.key, entry);
      }
    },

    /** Limits with what is used and reserved in their current window, for API answers. */
    async status(scope: Scope, scopeId: string, tenantId: string, limits: Limit[]): Promise<LimitStatus[]> {
      if (limits.length === 0) return [];
      const zone = await timeZone(tenantId);
      const now = clock.now();
      const windows = limits.map((limit) => ({ limit, ...windowBucket(limit.window, now, zone) }));
      const keys = windows.map((item) => ({ key: keyOf(scope, scopeId, item.limit, item.bucket), ttl: TTL[item.limit.window] }));
      await seed(keys);
      const state = await store.read(keys.map((item) => item.key));
      return windows.map((item, index) => ({
        ...item.limit,
        used: state.get(keys[index]?.key ?? "")?.used ?? 0,
        reserved: state.get(keys[index]?.key ?? "")?.reserved ?? 0,
        resets_at: item.resetsAt,
      }));
    },

    /** Listens for limits crossing 80 % and 100 % of their maximum. */
    onThreshold(listener: (event: ThresholdEvent) => void) {
      thresholdListeners.add(listener);
      return () => thresholdListeners.delete(listener);
    },

    /** Writes settled amounts to the database inside a usage batch's transaction. */
    async persist(trx: Kysely<Database>): Promise<void> {
      if (pending.size === 0) return;
      const batch = pending;
      pending = new Map();
      const now = clock.now().toISOString();
      try {
        for (const [key, { tenantId, delta }] of batch) {
          await trx
            .insertInto("quota_counters")
            .values({ key, tenant_id: tenantId, used: delta, updated_at: now })
            .onConflict((conflict) =>
              conflict.column("key").doUpdateSet((eb) => ({ used: eb("quota_counters.used", "+", delta), updated_at: now })),
            )
            .execute();
        }
      } catch (error) {
        for (const [key, entry] of batch) {
          const current = pending.get(key);
          pending.set(key, { tenantId: entry.tenantId, delta: entry.delta + (current?.delta ?? 0) });
        }
        throw error;
      }
    },
  };
}

export type QuotaService = ReturnType<typeof createQuotaService>;
