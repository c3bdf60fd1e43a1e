import type { RuntimeChannel } from "../channels/catalog.ts";
import type { RuntimeToken } from "../tokens/token-cache.ts";
import type { ChannelStats } from "./channel-stats.ts";

export type Strategy = "weighted_random" | "round_robin" | "least_connections" | "best_performance" | "adaptive";

export interface RoutingRule {
  model_pattern?: string | undefined;
  tag?: string | undefined;
  group: string;
}

/** `gpt-4*` style patterns: `*` matches any run of characters. */
export function matchesPattern(pattern: string, model: string): boolean {
  const expression = pattern
    .split("*")
    .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&"))
    .join(".*");
  return new RegExp(`^${expression}$`).test(model);
}

/** The channel group a routing rule sends this request to, if any rule matches. */
export function ruleGroup(rules: RoutingRule[], model: string, tag: string | undefined): string | undefined {
  for (const rule of rules) {
    if (rule.tag !== undefined && rule.tag !== tag) continue;
    if (rule.model_pattern !== undefined && !matchesPattern(rule.model_pattern, model)) continue;
    if (rule.tag === undefined && rule.model_pattern === undefined) continue;
    return rule.group;
  }
  return undefined;
}

/** Enabled channels of the tenant that serve the model and that the token (and a matching rule) allow. */
export function candidatesFor(
  channels: RuntimeChannel[],
  token: RuntimeToken,
  model: string,
  group: string | undefined,
): { serving: RuntimeChannel[]; usable: RuntimeChannel[] } {
  const serving = channels.filter((channel) => channel.models.has(model));
  const usable = serving.filter(
    (channel) =>
      channel.status === "enabled" &&
      (token.groups === null || token.groups.has(channel.group)) &&
      (group === undefined || channel.group === group),
  );
  return { serving, usable };
}

function weightedShuffle(channels: RuntimeChannel[], random: () => number): RuntimeChannel[] {
  const pool = [...channels];
  const out: RuntimeChannel[] = [];
  while (pool.length) {
    const total = pool.reduce((sum, channel) => sum + Math.max(channel.weight, 0), 0);
    let index = 0;
    if (total > 0) {
      let point = random() * total;
      index = pool.findIndex((channel) => {
        point -= Math.max(channel.weight, 0);
        return point < 0;
      });
      if (index < 0) index = pool.length - 1;
    } else {
      index = Math.floor(random() * pool.length);
    }
    out.push(...pool.splice(index, 1));
  }
  return out;
}

/**
 * Orders candidates for one request: tiers by priority, highest first; inside a tier the strategy
 * picks the order. Channels whose circuit is open are left out (unless every one is); channels that
 * are cooling down (Retry-After) or whose credentials are failing go after every healthy channel, so
 * they are tried only when nothing better is left.
 */
export function createRouter(stats: ChannelStats, random: () => number = Math.random) {
  const counters = new Map<string, number>();
  const lastFailure = (channel: RuntimeChannel) => stats.get(channel.id).breaker?.lastFailureAt ?? 0;

  function orderTier(tier: RuntimeChannel[], strategy: Strategy, key: string): RuntimeChannel[] {
    switch (strategy) {
      case "round_robin": {
        const sorted = [...tier].sort((a, b) => a.id.localeCompare(b.id));
        const start = counters.get(key) ?? 0;
        counters.set(key, start + 1);
        return sorted.map((_, index) => sorted[(start + index) % sorted.length] as RuntimeChannel);
      }
      case "least_connections":
        return weightedShuffle(tier, random).sort((a, b) => stats.get(a.id).inFlight - stats.get(b.id).inFlight);
      case "best_performance": {
        const score = (channel: RuntimeChannel) => {
          const health = stats.get(channel.id);
          return (health.latencyMs || 1) / Math.max(health.successRate, 0.01);
        };
        return weightedShuffle(tier, random).sort((a, b) => score(a) - score(b));
      }
      case "adaptive": {
        // Power of two choices on peak-EWMA latency × (in flight + 1); the rest follow by the same cost.
        const cost = (channel: RuntimeChannel) => {
          const health = stats.get(channel.id);
          return ((health.peakLatencyMs || 1) * (health.inFlight + 1)) / Math.max(health.successRate, 0.01);
        };
        const shuffled = weightedShuffle(tier, random);
        const [first, second, ...rest] = shuffled;
        if (!first || !second) return shuffled;
        const pair = cost(second) < cost(first) ? [second, first] : [first, second];
        return [...pair, ...rest.sort((a, b) => cost(a) - cost(b))];
      }
      default:
        return weightedShuffle(tier, random);
    }
  }

  /** Tiers by priority, highest first, each in the strategy's order (one tier, the usual case, is not grouped). */
  function byPriority(channels: RuntimeChannel[], strategy: Strategy, model: string): RuntimeChannel[] {
    const top = channels[0]?.priority ?? 0;
    if (channels.every((channel) => channel.priority === top)) return orderTier(channels, strategy, `${model}:${top}`);
    const tiers = new Map<number, RuntimeChannel[]>();
    for (const channel of channels) {
      const tier = tiers.get(channel.priority);
      if (tier) tier.push(channel);
      else tiers.set(channel.priority, [channel]);
    }
    const ordered: RuntimeChannel[] = [];
    for (const priority of [...tiers.keys()].sort((a, b) => b - a)) {
      for (const channel of orderTier(tiers.get(priority) ?? [], strategy, `${model}:${priority}`)) ordered.push(channel);
    }
    return ordered;
  }

  return {
    order(channels: RuntimeChannel[], strategy: Strategy, model: string): RuntimeChannel[] {
      const ordered = byPriority(channels, strategy, model);
      const impaired = (channel: RuntimeChannel) => stats.isCooling(channel.id) || stats.get(channel.id).credentialsFailing;
      // The usual case, every channel allowed and none impaired: the order stands as it is.
      if (ordered.every((channel) => stats.allows(channel.id) && !impaired(channel))) return ordered;
      const allowed = ordered.filter((channel) => stats.allows(channel.id));
      // Every circuit open: rather than fail with nothing, try them, the least recently failed first.
      if (allowed.length === 0) return ordered.sort((a, b) => lastFailure(a) - lastFailure(b));
      return [...allowed.filter((channel) => !impaired(channel)), ...allowed.filter(impaired)];
    },
  };
}

export type Router = ReturnType<typeof createRouter>;
