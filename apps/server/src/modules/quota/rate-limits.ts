import type { Clock } from "../../infra/clock.ts";
import { GatewayError } from "../gateway/gateway-error.ts";
import type { SettingsService } from "../settings/service.ts";
import type { RuntimeToken } from "../tokens/token-cache.ts";
import type { RateCheck, RateStore } from "./rate-store.ts";

export interface RateLimits {
  rpm?: number | undefined;
  tpm?: number | undefined;
}

interface Rule extends RateCheck {
  metric: "requests" | "tokens";
}

const seconds = (ms: number) => `${Math.max(1, Math.ceil(ms / 1000))}s`;

/** OpenAI's rate-limit headers for the tightest rule of each metric. */
function headersFor(rules: Rule[], remaining: number[], resetMs: number): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const metric of ["requests", "tokens"] as const) {
    let tightest = -1;
    rules.forEach((rule, index) => {
      if (rule.metric === metric && (tightest < 0 || (remaining[index] ?? 0) < (remaining[tightest] ?? 0))) tightest = index;
    });
    const rule = rules[tightest];
    if (!rule) continue;
    headers[`x-ratelimit-limit-${metric}`] = String(rule.limit);
    headers[`x-ratelimit-remaining-${metric}`] = String(remaining[tightest] ?? 0);
    headers[`x-ratelimit-reset-${metric}`] = seconds(resetMs);
  }
  return headers;
}

/**
 * Requests and tokens per minute for each token (its `rate_limits`), each member (the tenant setting
 * `user_rate_limits`) and each tenant (the platform setting `tenant_rate_limits`), over a sliding
 * window shared through Redis when configured.
 */
export function createRateLimiter(deps: { store: RateStore; settings: SettingsService; clock: Clock }) {
  const { store, settings, clock } = deps;

  async function rulesFor(token: RuntimeToken, tokens: number): Promise<Rule[]> {
    const [tenantValues, platformValues] = await Promise.all([settings.tenant(token.tenantId), settings.platform()]);
    const scopes: [string, RateLimits | undefined][] = [
      [`token:${token.id}`, token.rateLimits],
      [`member:${token.tenantId}:${token.userId}`, tenantValues.values.user_rate_limits as RateLimits | undefined],
      [`tenant:${token.tenantId}`, (platformValues.values.tenant_rate_limits as Record<string, RateLimits> | undefined)?.[token.tenantId]],
    ];
    const rules: Rule[] = [];
    for (const [key, limits] of scopes) {
      if (limits?.rpm) rules.push({ key: `${key}:rpm`, limit: limits.rpm, amount: 1, metric: "requests" });
      if (limits?.tpm) rules.push({ key: `${key}:tpm`, limit: limits.tpm, amount: tokens, metric: "tokens" });
    }
    return rules;
  }

  return {
    /**
     * Counts the request (and its estimated tokens) against every rule, or refuses with a 429 and
     * Retry-After. Answers the headers to send and how to correct the token count afterwards.
     */
    async admit(token: RuntimeToken, estimatedTokens: number) {
      const rules = await rulesFor(token, estimatedTokens);
      if (rules.length === 0) return { headers: {}, settle: async (_actualTokens: number) => undefined };
      const now = clock.now().getTime();
      const result = await store.consume(rules, now);
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
      const tokenRules = rules.filter((rule) => rule.metric === "tokens");
      return {
        headers,
        async settle(actualTokens: number) {
          const delta = actualTokens - estimatedTokens;
          if (delta === 0) return;
          await Promise.all(tokenRules.map((rule) => store.adjust(rule.key, delta, clock.now().getTime())));
        },
      };
    },
  };
}

export type RateLimiter = ReturnType<typeof createRateLimiter>;
