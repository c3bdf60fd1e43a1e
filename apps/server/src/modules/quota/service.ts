import type { ChatRequest } from "@lyss/llm";
import { textOf } from "@lyss/llm";
import type { Kysely } from "kysely";
import type { Database } from "../../db/schema.ts";
import type { Clock } from "../../infra/clock.ts";
import { after, type Maybe } from "../../infra/maybe.ts";
import type { PrincipalCache } from "../auth/principal-cache.ts";
import type { RuntimeChannel } from "../channels/catalog.ts";
import { GatewayError } from "../gateway/gateway-error.ts";
import { costOf, type PriceBook } from "../pricing/service.ts";
import type { SettingsService } from "../settings/service.ts";
import { type Limit, parseLimits, type RuntimeToken } from "../tokens/token-cache.ts";
import type { CounterDelta } from "./counters.ts";
import { type RateRule, rateRulesFor } from "./rate-limits.ts";
import type { Charge, QuotaStore, Settlement } from "./store.ts";
import { type Window, windowBucket } from "./windows.ts";

export type Scope = "token" | "member" | "tenant" | "channel";

export interface Amounts {
  requests: number;
  tokens: number;
  cost_micro_usd: number;
}

export interface Reservation {
  charges: Charge[];
  /** The plan the charges follow: its entries are in the same order. */
  plan: QuotaPlan;
  /** Each counter's used + reserved right after the reservation, in the same order. */
  totals: number[];
  estimate: Amounts;
}

/** One limit that applies to a token's calls, with the counter of its current window. */
interface PlanEntry {
  key: string;
  max: number;
  metric: Limit["metric"];
  ttlSeconds: number;
  /** Whether it is one of the token's own limits (answered in the remaining-quota headers). */
  own: boolean;
}

/**
 * What admission needs to know of a token: every limit of the token, its member and its tenant with
 * the counter of the current window, its rate rules, the completion allowance and the price
 * multipliers. Derived once
 * and reused until the token, a setting or a principal changes, a window ends, or it is a few seconds
 * old (the caches it is read from expire too).
 */
export interface QuotaPlan {
  tenantId: string;
  entries: PlanEntry[];
  maxTokensCap: number;
  tenantMultiplier: number;
  groupMultipliers: Record<string, number> | undefined;
  /** The token's rate rules (`rateRulesFor`). */
  rateRules: RateRule[];
  until: number;
  /** The settings' and the principals' generations it was derived at. */
  generations: [number, number];
}

/** How long a plan is used at most before it is derived again. */
const PLAN_MAX_AGE_MS = 10_000;

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

/** The metrics, in the order their remaining-quota headers are written. */
const METRICS = Object.keys(REMAINING_HEADER) as Limit["metric"][];

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

  const plans = new WeakMap<RuntimeToken, QuotaPlan>();

  async function buildPlan(token: RuntimeToken): Promise<QuotaPlan> {
    const generations: [number, number] = [settings.generation, principals.generation];
    const limits = await scopedLimits(token);
    const tenantValues = (await settings.tenant(token.tenantId)).values;
    const platformValues = (await settings.platform()).values;
    const zone = String(tenantValues.time_zone ?? "UTC");
    const now = clock.now();
    let until = now.getTime() + PLAN_MAX_AGE_MS;
    const entries = limits.map(({ scope, scopeId, limit }): PlanEntry => {
      const { bucket, resetsAt } = windowBucket(limit.window, now, zone);
      if (resetsAt) until = Math.min(until, Date.parse(resetsAt));
      return {
        key: keyOf(scope, scopeId, limit, bucket),
        max: limit.max,
        metric: limit.metric,
        ttlSeconds: TTL[limit.window],
        own: scope === "token",
      };
    });
    await seed(entries.map((entry) => ({ key: entry.key, ttl: entry.ttlSeconds })));
    const plan: QuotaPlan = {
      tenantId: token.tenantId,
      entries,
      maxTokensCap: Number(tenantValues.quota_default_max_tokens ?? 4096),
      tenantMultiplier: (platformValues.tenant_price_multipliers as Record<string, number> | undefined)?.[token.tenantId] ?? 1,
      groupMultipliers: platformValues.group_price_multipliers as Record<string, number> | undefined,
      rateRules: rateRulesFor(token, tenantValues, platformValues),
      until,
      // A change while the plan was being derived leaves it to be derived again on the next call.
      generations,
    };
    plans.set(token, plan);
    return plan;
  }

  /** Announces each limit whose settled use just crossed 80 % or 100 % of its maximum (`totals`: use after the settlement). */
  function announceCrossings(settlements: Settlement[], maxima: number[], totals: number[]) {
    for (let index = 0; index < settlements.length; index++) {
      const item = settlements[index] as Settlement;
      if (item.used <= 0) continue;
      const after = totals[index] ?? 0;
      const max = maxima[index] ?? 0;
      for (const threshold of THRESHOLDS) {
        const line = max * threshold;
        if (!(after - item.used < line && after >= line)) continue;
        const [scope, scopeId, metric, window] = parseKey(item.key);
        const event: ThresholdEvent = {
          tenantId: item.tenantId,
          key: item.key,
          scope,
          scopeId,
          metric,
          window,
          max,
          used: after,
          threshold,
        };
        for (const listener of thresholdListeners) listener(event);
      }
    }
  }

  /** Keeps the amounts for the database, settles the counters in the store and announces the crossings. */
  function settled(settlements: Settlement[], maxima: number[]): Maybe<void> {
    if (settlements.length === 0) return;
    // What was used goes to the database whatever the store answers: a store that fails or does not
    // answer in time (Redis away, a cluster primary behind a burst) loses no use from the lasting counters.
    for (const item of settlements) {
      if (item.used === 0) continue;
      const entry = pending.get(item.key);
      if (entry) entry.delta += item.used;
      else pending.set(item.key, { tenantId: item.tenantId, delta: item.used });
    }
    // The store answers each counter's use after this settlement, so crossings need no extra read.
    return after(store.settle(settlements), (totals) => {
      if (thresholdListeners.size > 0) announceCrossings(settlements, maxima, totals);
    });
  }

  return {
    keyOf,

    /** The token's plan, when the one derived last still holds (no change and no window ended since). */
    cachedPlan(token: RuntimeToken): QuotaPlan | undefined {
      const plan = plans.get(token);
      if (!plan || plan.generations[0] !== settings.generation || plan.generations[1] !== principals.generation) return undefined;
      return clock.ms() < plan.until ? plan : undefined;
    },

    /** Derives the token's plan from its limits, its member's and its tenant's, and the settings. */
    buildPlan,

    /** The tenant's multiplier times the channel group's, from the platform settings. */
    multiplier(plan: QuotaPlan, group: string | undefined): number {
      return plan.tenantMultiplier * (group ? (plan.groupMultipliers?.[group] ?? 1) : 1);
    },

    /** What a request is expected to use: its prompt by size plus its completion allowance. */
    estimate(plan: QuotaPlan, body: ChatRequest, multiplier: number): Amounts {
      let promptChars = 0;
      for (const message of body.messages) promptChars += textOf(message.content).length + 4;
      const prompt = Math.ceil(promptChars / CHARS_PER_TOKEN);
      const completion = Number(body.max_completion_tokens ?? body.max_tokens ?? plan.maxTokensCap);
      const price = prices.priceFor(plan.tenantId, body.model);
      const usage = { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
      return { requests: 1, tokens: prompt + completion, cost_micro_usd: costOf(price, usage, multiplier) };
    },

    /**
     * Reserves the request's estimate against every limit of the plan (all or none), or refuses with a
     * 429; from memory (no promise) without a shared store.
     */
    reserve(plan: QuotaPlan, amounts: Amounts): Maybe<Reservation> {
      const entries = plan.entries;
      const charges: Charge[] = new Array(entries.length);
      for (let index = 0; index < entries.length; index++) {
        const entry = entries[index] as PlanEntry;
        charges[index] = {
          key: entry.key,
          tenantId: plan.tenantId,
          max: entry.max,
          amount: amounts[entry.metric],
          ttlSeconds: entry.ttlSeconds,
        };
      }
      const reservation: Reservation = { charges, plan, totals: [], estimate: amounts };
      if (charges.length === 0) return reservation;
      return after(store.reserve(charges), (result) => {
        if (!result.ok) {
          const [scope, , metric, window] = parseKey(result.key);
          throw new GatewayError(
            429,
            `You exceeded your current quota: the ${scope} ${window === "total" ? "" : `${window}ly `}${metric} limit is reached.`,
            "insufficient_quota",
            "insufficient_quota",
          );
        }
        reservation.totals = result.totals;
        return reservation;
      });
    },

    /**
     * Adds what was left of the token's own limits right after this reservation, per metric (the
     * tightest window), as `x-lyss-quota-remaining-<metric>` headers.
     */
    remainingHeaders(reservation: Reservation, headers: Record<string, string>) {
      const entries = reservation.plan.entries;
      for (const metric of METRICS) {
        let least = -1;
        for (let index = 0; index < entries.length; index++) {
          const entry = entries[index] as PlanEntry;
          if (!entry.own || entry.metric !== metric) continue;
          const left = Math.max(0, entry.max - (reservation.totals[index] ?? 0));
          if (least < 0 || left < least) least = left;
        }
        if (least >= 0) headers[REMAINING_HEADER[metric]] = String(least);
      }
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

    /**
     * Turns the reservation into actual use (releasing the rest) and charges the serving channel; from
     * memory (no promise) without a shared store or channel limits.
     */
    settle(reservation: Reservation, actual: Amounts, channel: RuntimeChannel | undefined): Maybe<void> {
      const entries = reservation.plan.entries;
      const charges = reservation.charges;
      const settlements: Settlement[] = new Array(charges.length);
      // Each settlement's maximum, in the same order.
      const maxima: number[] = new Array(charges.length);
      for (let index = 0; index < charges.length; index++) {
        const charge = charges[index] as Charge;
        settlements[index] = {
          key: charge.key,
          tenantId: charge.tenantId,
          reserved: charge.amount,
          used: actual[(entries[index] as PlanEntry).metric],
          ttlSeconds: charge.ttlSeconds,
        };
        maxima[index] = charge.max;
      }
      if (!channel || channel.limits.length === 0) return settled(settlements, maxima);
      return after(timeZone(reservation.plan.tenantId), (zone) => {
        for (const limit of channel.limits) {
          const key = keyOf("channel", channel.id, limit, windowBucket(limit.window, clock.now(), zone).bucket);
          settlements.push({
            key,
            tenantId: reservation.plan.tenantId,
            reserved: 0,
            used: actual[limit.metric],
            ttlSeconds: TTL[limit.window],
          });
          maxima.push(limit.max);
        }
        return settled(settlements, maxima);
      });
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

    /** Settled amounts not yet in the database, handed to the next usage batch. */
    takeSettled(): CounterDelta[] {
      if (pending.size === 0) return [];
      const taken = [...pending].map(([key, { tenantId, delta }]) => ({ key, tenantId, delta }));
      pending = new Map();
      return taken;
    },
  };
}

export type QuotaService = ReturnType<typeof createQuotaService>;
