import { RateLimiterClusterMaster } from "rate-limiter-flexible";
import { createMemoryRateStore, type RateCheck, type RateResult, type RateStore } from "../modules/quota/rate-store.ts";
import { type Charge, type CounterState, createMemoryQuotaStore, type QuotaStore } from "../modules/quota/store.ts";
import type { ClusterHub, PrimaryLink } from "./cluster-rpc.ts";

type Settlement = Parameters<QuotaStore["settle"]>[0];

/**
 * In the primary of a cluster without Redis: the one in-memory quota store, rate store and login /
 * per-address limiters every worker uses over IPC, and the relay of the workers' bus events. The
 * primary's event loop runs one message at a time, so each check-and-add stays atomic across workers.
 */
export function serveSharedState(hub: ClusterHub) {
  const quota = createMemoryQuotaStore();
  const rates = createMemoryRateStore();
  hub.handle("quota.reserve", (charges: Charge[]) => quota.reserve(charges));
  hub.handle("quota.settle", (settlements: Settlement) => quota.settle(settlements));
  hub.handle("quota.read", async (keys: string[]) => [...(await quota.read(keys)).entries()]);
  hub.handle("quota.seed", (key: string, used: number, ttlSeconds: number) => quota.seed(key, used, ttlSeconds));
  hub.handle("rate.consume", (checks: RateCheck[], nowMs: number) => rates.consume(checks, nowMs));
  hub.handle("rate.adjust", (key: string, delta: number, nowMs: number) => rates.adjust(key, delta, nowMs));
  // The workers' RateLimiterCluster instances (infra/rate-limiter.ts) talk to this one.
  new RateLimiterClusterMaster();
  hub.relayEvents();
}

/**
 * A worker's quota store: the primary's counters. Like the Redis store, it remembers locally which
 * counters it has seeded, since `known` is synchronous; seeding an already seeded counter is a no-op.
 */
export function linkedQuotaStore(link: PrimaryLink): QuotaStore {
  const seen = new Set<string>();
  return {
    reserve: (charges) => link.call("quota.reserve", charges),
    settle: async (settlements) => (settlements.length > 0 ? link.apply<number[]>("quota.settle", settlements) : []),
    read: async (keys) => new Map(await link.call<[string, CounterState][]>("quota.read", keys)),
    async seed(key, used, ttlSeconds) {
      await link.call("quota.seed", key, used, ttlSeconds);
      seen.add(key);
    },
    known: (key) => seen.has(key),
  };
}

/** A worker's rate store: the primary's sliding windows. */
export function linkedRateStore(link: PrimaryLink): RateStore {
  return {
    consume: (checks, nowMs) => link.call<RateResult>("rate.consume", checks, nowMs),
    adjust: (key, delta, nowMs) => link.apply("rate.adjust", key, delta, nowMs),
  };
}
