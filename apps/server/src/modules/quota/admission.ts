import type { ChatRequest, Usage } from "@lyss/llm";
import { after, both, type Maybe } from "../../infra/maybe.ts";
import type { Metrics } from "../../infra/metrics.ts";
import type { RuntimeChannel } from "../channels/catalog.ts";
import { GatewayError } from "../gateway/gateway-error.ts";
import { costOf, type Price, type PriceBook } from "../pricing/service.ts";
import type { RuntimeToken } from "../tokens/token-cache.ts";
import type { RateAdmission, RateLimiter } from "./rate-limits.ts";
import type { Amounts, QuotaPlan, QuotaService, Reservation } from "./service.ts";

/** Prices a call's usage and settles its quotas when it ends. */
export interface Billing {
  cost(usage: Usage | undefined, channel: RuntimeChannel | undefined): number;
  /** Once per call; from memory (no promise) without a shared store. */
  settle(status: number, usage: Usage | undefined, cost: number, channel: RuntimeChannel | undefined): Maybe<void>;
}

export interface Admission {
  billing: Billing;
  candidates: RuntimeChannel[];
  headers: Record<string, string>;
}

type AdmissionDeps = { quota: QuotaService; prices: PriceBook; rates: RateLimiter; metrics: Pick<Metrics, "rejected"> };

/**
 * Admits a call against its quotas and answers how to bill it; refuses with a 429 when over quota.
 * Answers from memory (no promise) in the steady state: the token's plan derived already, no channel
 * limits to read and no shared store.
 */
export function admitCall(deps: AdmissionDeps, token: RuntimeToken, body: ChatRequest, candidates: RuntimeChannel[]): Maybe<Admission> {
  const refused = (error: unknown) => {
    if (error instanceof GatewayError && error.status === 429) {
      deps.metrics.rejected(error.code === "rate_limit_exceeded" ? "rate_limit" : "quota", token.tenantId);
    }
    throw error;
  };
  try {
    const admission = admit(deps, token, body, candidates);
    return admission instanceof Promise ? admission.catch(refused) : admission;
  } catch (error) {
    return refused(error);
  }
}

function admit(deps: AdmissionDeps, token: RuntimeToken, body: ChatRequest, candidates: RuntimeChannel[]): Maybe<Admission> {
  // Only channels with limits of their own need their counters read.
  if (!candidates.some((channel) => channel.limits.length > 0)) return admitTo(deps, token, body, candidates);
  return deps.quota.withinChannelLimits(candidates, token.tenantId).then((usable) => admitTo(deps, token, body, usable));
}

function admitTo(deps: AdmissionDeps, token: RuntimeToken, body: ChatRequest, usable: RuntimeChannel[]): Maybe<Admission> {
  if (usable.length === 0) {
    throw new GatewayError(429, "Every channel serving this model has used up its quota.", "insufficient_quota", "insufficient_quota");
  }
  const { quota, prices, rates } = deps;
  return after(quota.cachedPlan(token) ?? quota.buildPlan(token), (plan) => {
    const estimated = quota.estimate(plan, body, quota.multiplier(plan, usable[0]?.group));
    return after(rates.admit(plan.rateRules, estimated.tokens), (rate) =>
      after(quota.reserve(plan, estimated), (reservation): Admission => {
        const headers = rate.headers;
        quota.remainingHeaders(reservation, headers);
        const price = prices.priceFor(token.tenantId, body.model);
        return { candidates: usable, headers, billing: new CallBilling(quota, plan, price, reservation, rate) };
      }),
    );
  });
}

/** How one admitted call is priced and settled (once). */
class CallBilling implements Billing {
  private settled = false;

  constructor(
    private readonly quota: QuotaService,
    private readonly plan: QuotaPlan,
    private readonly price: Price | undefined,
    private readonly reservation: Reservation,
    private readonly rate: RateAdmission,
  ) {}

  cost(usage: Usage | undefined, channel: RuntimeChannel | undefined): number {
    return costOf(this.price, usage, this.quota.multiplier(this.plan, channel?.group));
  }

  settle(status: number, usage: Usage | undefined, cost: number, channel: RuntimeChannel | undefined): Maybe<void> {
    if (this.settled) return;
    this.settled = true;
    const actual = actualAmounts(status, usage, cost);
    // The rate limits settle even when the quotas fail to (the failure is the caller's to report).
    return both(
      () => this.quota.settle(this.reservation, actual, channel),
      () => this.rate.settle(actual.tokens),
    );
  }
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
