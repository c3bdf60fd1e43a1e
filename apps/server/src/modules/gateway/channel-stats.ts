/** Live health of one channel, kept in memory and fed by every request. */
export interface ChannelHealth {
  inFlight: number;
  /** Exponentially weighted average latency of successful requests, ms. */
  latencyMs: number;
  /** Peak-EWMA latency: jumps up at once, decays slowly (for the adaptive strategy). */
  peakLatencyMs: number;
  /** Decaying success rate in [0, 1]. */
  successRate: number;
  requests: number;
  failures: number;
  consecutiveFailures: number;
  credentialsFailing: boolean;
  lastError: string | null;
  /** The upstream asked us to wait (Retry-After) until this time, ms since epoch. */
  coolingUntil: number;
}

const ALPHA = 0.2;
const PEAK_DECAY = 0.05;

function fresh(): ChannelHealth {
  return {
    inFlight: 0,
    latencyMs: 0,
    peakLatencyMs: 0,
    successRate: 1,
    requests: 0,
    failures: 0,
    consecutiveFailures: 0,
    credentialsFailing: false,
    lastError: null,
    coolingUntil: 0,
  };
}

/** Per-channel statistics used by the routing strategies and shown by /v1/models/health. */
export function createChannelStats(now: () => number = Date.now) {
  const channels = new Map<string, ChannelHealth>();
  const get = (id: string) => {
    let health = channels.get(id);
    if (!health) {
      health = fresh();
      channels.set(id, health);
    }
    return health;
  };

  return {
    get,
    started(id: string) {
      get(id).inFlight += 1;
    },
    succeeded(id: string, latencyMs: number) {
      const health = get(id);
      health.inFlight = Math.max(0, health.inFlight - 1);
      health.requests += 1;
      health.consecutiveFailures = 0;
      health.credentialsFailing = false;
      health.successRate = health.successRate * (1 - ALPHA) + ALPHA;
      health.latencyMs = health.latencyMs === 0 ? latencyMs : health.latencyMs * (1 - ALPHA) + latencyMs * ALPHA;
      health.peakLatencyMs =
        latencyMs > health.peakLatencyMs ? latencyMs : health.peakLatencyMs * (1 - PEAK_DECAY) + latencyMs * PEAK_DECAY;
    },
    failed(id: string, error: string, options: { credentials?: boolean; retryAfterMs?: number } = {}) {
      const health = get(id);
      health.inFlight = Math.max(0, health.inFlight - 1);
      health.requests += 1;
      health.failures += 1;
      health.consecutiveFailures += 1;
      health.successRate *= 1 - ALPHA;
      health.lastError = error;
      if (options.credentials) health.credentialsFailing = true;
      if (options.retryAfterMs) health.coolingUntil = now() + options.retryAfterMs;
    },
    /** The request ended without an outcome to judge (the client went away). */
    released(id: string) {
      const health = get(id);
      health.inFlight = Math.max(0, health.inFlight - 1);
    },
    isCooling: (id: string) => get(id).coolingUntil > now(),
    forget(id: string) {
      channels.delete(id);
    },
  };
}

export type ChannelStats = ReturnType<typeof createChannelStats>;
