import type { Clock } from "../../infra/clock.ts";
import { after, type Maybe } from "../../infra/maybe.ts";
import { GatewayError } from "../gateway/gateway-error.ts";
import type { RuntimeToken } from "../tokens/token-cache.ts";
import type { RateCheck, RateResult, RateStore } from "./rate-store.ts";

export interface RateLimits {
  rpm?: number | undefined;
  tpm?: number | undefined;
}

interface Rule extends RateCheck {
  metric: "requests" | "tokens";
}

/** A rule as derived from the limits: its key and limit, without a request's amount. */
export type RateRule = Omit<Rule, "amount">;

/**
 * The rules that apply to a token's calls: its own `rate_limits`, its member's (the tenant setting
 * `user_rate_limits`) and its tenant's (the platform setting `tenant_rate_limits`).
 */
export function rateRulesFor(
  token: RuntimeToken,
  tenantValues: Readonly<Record<string, unknown>>,
  platformValues: Readonly<Record<string, unknown>>,
): RateRule[] {
  const rules: RateRule[] = [];
  const add = (scope: string, limits: RateLimits | undefined) => {
    if (limits?.rpm) rules.push({ key: `${scope}:rpm`, limit: limits.rpm, metric: "requests" });
    if (limits?.tpm) rules.push({ key: `${scope}:tpm`, limit: limits.tpm, metric: "tokens" });
  };
  add(`token:${token.id}`, token.rateLimits);
  add(`member:${token.tenantId}:${token.userId}`, tenantValues.user_rate_limits as RateLimits | undefined);
  add(`tenant:${token.tenantId}`, (platformValues.tenant_rate_limits as Record<string, RateLimits> | undefined)?.[token.tenantId]);
  return rules;
}

const seconds = (ms: number) => `${Math.max(1, Math.ceil(ms / 1000))}s`;

/** OpenAI's rate-limit headers for the tightest rule of each metric. */
function headersFor(rules: Rule[], remaining: number[], resetMs: number): Record<string, string> {
  const headers: Record<string, string> = {};
  let requests = -1;
  let tokens = -1;
  for (let index = 0; index < rules.length; index++) {
    const left = remaining[index] ?? 0;
    if ((rules[index] as Rule).metric === "requests") {
      if (requests < 0 || left < (remaining[requests] ?? 0)) requests = index;
    } else if (tokens < 0 || left < (remaining[tokens] ?? 0)) tokens = index;
  }
  const reset = seconds(resetMs);
  if (requests >= 0) {
    headers["x-ratelimit-limit-requests"] = String((rules[requests] as Rule).limit);
    headers["x-ratelimit-remaining-requests"] = String(remaining[requests] ?? 0);
    headers["x-ratelimit-reset-requests"] = reset;
  }
  if (tokens >= 0) {
    headers["x-ratelimit-limit-tokens"] = String((rules[tokens] as Rule).limit);
    headers["x-ratelimit-remaining-tokens"] = String(remaining[tokens] ?? 0);
    headers["x-ratelimit-reset-tokens"] = reset;
  }
  return headers;
}

/** A request counted against its rate rules: the headers to answer and how to correct the token count. */
export interface RateAdmission {
  headers: Record<string, string>;
  settle(actualTokens: number): Maybe<void>;
}

const nothingToSettle = () => undefined;

/**
 * Requests and tokens per minute for each token, member and tenant (`rateRulesFor`), over a sliding
 * window shared through Redis when configured.
 */
export function createRateLimiter(deps: { store: RateStore; clock: Clock }) {
  const { store, clock } = deps;

  /** Corrects the token count of each token rule from `from` on by what the request used beyond (or short of) its estimate. */
  function adjust(rules: Rule[], from: number, delta: number): Maybe<void> {
    for (let index = from; index < rules.length; index++) {
      const rule = rules[index] as Rule;
      if (rule.metric !== "tokens") continue;
      const adjusted = store.adjust(rule.key, delta, clock.ms());
      if (adjusted instanceof Promise) return adjusted.then(() => adjust(rules, index + 1, delta));
    }
  }

  function admitted(rules: Rule[], result: RateResult, estimatedTokens: number): RateAdmission {
    const headers = headersFor(rules, result.remaining, result.resetMs);
    if (!result.ok) {
      const rule = rules[result.index] as Rule;
      const retryAfter = Math.max(1, Math.ceil(result.retryAfterMs / 1000));
      throw new GatewayError(
        429,
        `Rate limit reached: ${rule.limit} ${rule.metric} per minute for this ${rule.key.split(":")[0]}. Try again in ${retryAfter}s.`,
        "rate_limit_exceeded",
        "rate_limit_error",
        { ...headers, "retry-after": String(retryAfter) },
      );
    }
    return {
      headers,
      settle(actualTokens: number) {
        const delta = actualTokens - estimatedTokens;
        return delta === 0 ? undefined : adjust(rules, 0, delta);
      },
    };
  }

  return {
    /**
     * Counts the request (and its estimated tokens) against every rule of the token (its quota plan's),
     * or refuses with a 429 and Retry-After. Answers the headers to send and how to correct the token
     * count afterwards; from memory (no promise) without a shared store.
     */
    admit(template: RateRule[], estimatedTokens: number): Maybe<RateAdmission> {
      // (Headers of its own: admission adds the quota's to them.)
      if (template.length === 0) return { headers: {}, settle: nothingToSettle };
      const now = clock.ms();
      const rules: Rule[] = new Array(template.length);
      for (let index = 0; index < template.length; index++) {
        const rule = template[index] as RateRule;
        rules[index] = { key: rule.key, limit: rule.limit, metric: rule.metric, amount: rule.metric === "requests" ? 1 : estimatedTokens };
      }
      return after(store.consume(rules, now), (result) => admitted(rules, result, estimatedTokens));
    },
  };
}

export type RateLimiter = ReturnType<typeof createRateLimiter>;
