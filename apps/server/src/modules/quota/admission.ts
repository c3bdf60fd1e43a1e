import type { ChatRequest, Usage } from "@lyss/llm";
import type { Metrics } from "../../infra/metrics.ts";
import type { RuntimeChannel } from "../channels/catalog.ts";
import { GatewayError } from "../gateway/gateway-error.ts";
import { costOf, type PriceBook } from "../pricing/service.ts";
import type { RuntimeToken } from "../tokens/token-cache.ts";
import type { RateLimiter } from "./rate-limits.ts";
import type { Amounts, QuotaService } from "./service.ts";

/** Prices a call's usage and settles its quotas when it ends. */
export interface Billing {
  cost(usage: Usage | undefined, channel: RuntimeChannel | undefined): number;
  settle(status: number, usage: Usage | undefined, cost: number, channel: RuntimeChannel | undefined): Promise<void>;
}

/** Admits a call against its quotas and answers how to bill it; refuses with a 429 when over quota. */
export async function admitCall(
  deps: { quota: QuotaService; prices: PriceBook; rates: RateLimiter; metrics: Pick<Metrics, "rejected"> },
  token: RuntimeToken,
  body: ChatRequest,
  candidates: RuntimeChannel[],
): Promise<{ billing: Billing; candidates: RuntimeChannel[]; headers: Record<string, string> }> {
  try {
    return await admit(deps, token, body, candidates);
  } catch (error) {
    if (error instanceof GatewayError && error.status === 429) {
      deps.metrics.rejected(error.code === "rate_limit_exceeded" ? "rate_limit" : "quota", token.tenantId);
    }
    throw error;
  }
}

async function admit(
  { quota, prices, rates }: { quota: QuotaService; prices: PriceBook; rates: RateLimiter },
  token: RuntimeToken,
  body: ChatRequest,
  candidates: RuntimeChannel[],
): Promise<{ billing: Billing; candidates: RuntimeChannel[]; headers: Record<string, string> }> {
  // Only channels with limits of their own need their counters read.
  const usable = candidates.some((channel) => channel.limits.length > 0)
    ? await quota.withinChannelLimits(candidates, token.tenantId)
    : candidates;
  if (usable.length === 0) {
    throw new GatewayError(429, "Every channel serving this model has used up its quota.", "insufficient_quota", "insufficient_quota");
  }
  const plan = quota.cachedPlan(token) ?? (await quota.buildPlan(token));
  const estimated = quota.estimate(plan, body, quota.multiplier(plan, usable[0]?.group));
  const rate = await rates.admit(plan.rateRules, estimated.tokens);
  const reservation = await quota.reserve(plan, estimated);
  const headers = rate.headers;
  quota.remainingHeaders(reservation, headers);
  const price = prices.priceFor(token.tenantId, body.model);
  let settled = false;
  return {
    candidates: usable,
    headers,
    billing: {
      cost: (usage, channel) => costOf(price, usage, quota.multiplier(plan, channel?.group)),
      async settle(status, usage, cost, channel) {
        if (settled) return;
        settled = true;
        const actual = actualAmounts(status, usage, cost);
        await Promise.all([quota.settle(reservation, actual, channel), rate.settle(actual.tokens)]);
      },
    },
  };
}

/** The amounts a finished call actually used. */
export function actualAmounts(status: number, usage: Usage | undefined, cost: number): Amounts {
  const produced = (usage?.completion_tokens ?? 0) > 0;
  return {
    requests: status < 500 || produced ? 1 : 0,
    tokens: usage?.total_tokens ?? 0,
    cost_micro_usd: cost,
  };
}
