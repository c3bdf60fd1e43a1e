import type { Redis } from "ioredis";
import { RateLimiterCluster, RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from "rate-limiter-flexible";

export interface Limiter {
  /** Counts one hit; answers how many seconds to wait when the limit is exceeded, else 0. */
  hit(key: string): Promise<number>;
  /** Seconds to wait if the limit is already exhausted, without counting a hit. */
  blockedFor(key: string): Promise<number>;
  reset(key: string): Promise<void>;
}

/**
 * A fixed-window counter shared through Redis when configured; otherwise kept in this process, or with
 * `cluster` (a cluster worker without Redis) in the primary process, which counts for every worker
 * (rate-limiter-flexible's RateLimiterCluster, answered by the primary's RateLimiterClusterMaster).
 */
export function createLimiter(options: {
  name: string;
  points: number;
  durationSeconds: number;
  redis?: Redis | undefined;
  cluster?: boolean;
  prefix: string;
}): Limiter {
  const settings = { points: options.points, duration: options.durationSeconds, keyPrefix: `${options.prefix}rl:${options.name}` };
  const limiter = options.redis
    ? new RateLimiterRedis({ ...settings, storeClient: options.redis, insuranceLimiter: new RateLimiterMemory(settings) })
    : options.cluster
      ? new RateLimiterCluster({ ...settings, timeoutMs: 5000 })
      : new RateLimiterMemory(settings);
  return {
    async hit(key) {
      try {
        await limiter.consume(key);
        return 0;
      } catch (result) {
        if (result instanceof RateLimiterRes) return Math.max(1, Math.ceil(result.msBeforeNext / 1000));
        throw result;
      }
    },
    async blockedFor(key) {
      const result = await limiter.get(key);
      if (!result || result.consumedPoints < options.points) return 0;
      return Math.max(1, Math.ceil(result.msBeforeNext / 1000));
    },
    async reset(key) {
      await limiter.delete(key);
    },
  };
}
