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

/** How long a token's derived rules are used at most before they are derived again. */
const RULES_MAX_AGE_MS = 10_000;

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

/**
 * Requests and tokens per minute for each token (its `rate_limits`), each member (the tenant setting
 * `user_rate_limits`) and each tenant (the platform setting `tenant_rate_limits`), over a sliding
 * window shared through Redis when configured.
 */
export function createRateLimiter(deps: { store: RateStore; settings: SettingsService; clock: Clock }) {
  const { store, settings, clock } = deps;
  /** Each token's rules (keys and limits), derived again when a setting changes or they are a few seconds old. */
  const derived = new WeakMap<RuntimeToken, { rules: Omit<Rule, "amount">[]; generation: number; until: number }>();

  async function derive(token: RuntimeToken, now: number): Promise<Omit<Rule, "amount">[]> {
    const generation = settings.generation;
    const tenantValues = (await settings.tenant(token.tenantId)).values;
    const platformValues = (await settings.platform()).values;
    const rules: Omit<Rule, "amount">[] = [];
    const add = (scope: string, limits: RateLimits | undefined) => {
      if (limits?.rpm) rules.push({ key: `${scope}:rpm`, limit: limits.rpm, metric: "requests" });
      if (limits?.tpm) rules.push({ key: `${scope}:tpm`, limit: limits.tpm, metric: "tokens" });
    };
    add(`token:${token.id}`, token.rateLimits);
    add(`member:${token.tenantId}:${token.userId}`, tenantValues.user_rate_limits as RateLimits | undefined);
    add(`tenant:${token.tenantId}`, (platformValues.tenant_rate_limits as Record<string, RateLimits> | undefined)?.[token.tenantId]);
    derived.set(token, { rules, generation, until: now + RULES_MAX_AGE_MS });
    return rules;
  }

  return {
    /**
     * Counts the request (and its estimated tokens) against every rule, or refuses with a 429 and
     * Retry-After. Answers the headers to send and how to correct the token count afterwards.
     */
    async admit(token: RuntimeToken, estimatedTokens: number) {
      const now = clock.now().getTime();
      const cached = derived.get(token);
      const template = cached && cached.generation === settings.generation && now < cached.until ? cached.rules : await derive(token, now);
      if (template.length === 0) return { headers: {}, settle: async (_actualTokens: number) => undefined };
      const rules = template.map(
        (rule): Rule => ({
          key: rule.key,
          limit: rule.limit,
          metric: rule.metric,
          amount: rule.metric === "requests" ? 1 : estimatedTokens,
        }),
      );
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
          for (const rule of tokenRules) await store.adjust(rule.key, delta, clock.now().getTime());
        },
      };
    },
  };
}

export type RateLimiter = ReturnType<typeof createRateLimiter>;
