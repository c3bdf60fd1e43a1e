import { randomUUID } from "node:crypto";
import type { EventBus } from "../../infra/bus.ts";
import { type BreakerOptions, CircuitBreaker, type CircuitChange, type CircuitState } from "../health/breaker.ts";
import { SampleWindow } from "../health/sample-window.ts";

/** The last scheduled probe of a channel. */
export interface ProbeResult {
  /** When it ran, ms since epoch. */
  at: number;
  ok: boolean;
  latencyMs: number;
  /** The upstream's HTTP status; null when it could not be reached. */
  status: number | null;
  error: string | null;
}

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
  /** Recent latencies (to the response headers) and times to first token, for percentiles. */
  latency: SampleWindow;
  ttft: SampleWindow;
  /** The circuit breaker, when the stats were created with one. */
  breaker: CircuitBreaker | undefined;
  lastProbe: ProbeResult | null;
  /** The channel's tenant, once a request or probe named it (for metrics labels). */
  tenantId: string | null;
}

/** An upstream refused a channel's credentials (401 or 403). */
export interface CredentialsRefused {
  channelId: string;
  tenantId: string;
  status: number;
  message: string;
}

/** A breaker's transition, sent to every other process (cluster workers, instances) through the bus. */
export const CIRCUIT_TOPIC = "gateway.circuit";

interface CircuitMessage {
  /** The stats that made the transition, which ignore their own message. */
  origin: string;
  channelId: string;
  change: CircuitChange;
}

const ALPHA = 0.2;
const PEAK_DECAY = 0.05;

/**
 * Per-channel statistics used by the routing strategies and shown by /v1/models/health and
 * /api/v1/channels/:id/stats. With `breaker` options each channel also gets a circuit breaker that
 * routing consults; without, every channel is always allowed. With a `bus`, a breaker's transitions
 * made by this process's traffic are published, and those of other processes adopted (not published
 * again), so a circuit opened by one process is open in all. Probe results reach every process
 * already, so the transitions they cause are not published.
 */
export function createChannelStats(now: () => number = Date.now, options: { breaker?: BreakerOptions; bus?: EventBus } = {}) {
  const channels = new Map<string, ChannelHealth>();
  const refusedListeners = new Set<(event: CredentialsRefused) => void>();
  const { bus, breaker } = options;
  const origin = randomUUID();
  let probing = false;
  const share = (channelId: string) => (change: CircuitChange) => {
    if (bus && !probing) bus.publish(CIRCUIT_TOPIC, { origin, channelId, change } satisfies CircuitMessage);
  };
  const unsubscribe = bus?.subscribe(CIRCUIT_TOPIC, (payload) => {
    const message = payload as CircuitMessage | null;
    if (!message?.channelId || message.origin === origin) return;
    get(message.channelId).breaker?.adopt(message.change, now());
  });
  const fresh = (id: string): ChannelHealth => ({
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
    latency: new SampleWindow(),
    ttft: new SampleWindow(),
    breaker: breaker ? new CircuitBreaker(breaker, share(id)) : undefined,
    lastProbe: null,
    tenantId: null,
  });
  const get = (id: string) => {
    let health = channels.get(id);
    if (!health) {
      health = fresh(id);
      channels.set(id, health);
    }
    return health;
  };

  function success(health: ChannelHealth, latencyMs: number) {
    health.requests += 1;
    health.consecutiveFailures = 0;
    health.credentialsFailing = false;
    health.successRate = health.successRate * (1 - ALPHA) + ALPHA;
    health.latencyMs = health.latencyMs === 0 ? latencyMs : health.latencyMs * (1 - ALPHA) + latencyMs * ALPHA;
    health.peakLatencyMs = latencyMs > health.peakLatencyMs ? latencyMs : health.peakLatencyMs * (1 - PEAK_DECAY) + latencyMs * PEAK_DECAY;
    health.latency.add(latencyMs, now());
    health.breaker?.succeeded(now());
  }

  function failure(health: ChannelHealth, error: string, failOptions: { credentials?: boolean; retryAfterMs?: number }) {
    health.requests += 1;
    health.failures += 1;
    health.consecutiveFailures += 1;
    health.successRate *= 1 - ALPHA;
    health.lastError = error;
    if (failOptions.credentials) health.credentialsFailing = true;
    if (failOptions.retryAfterMs) health.coolingUntil = now() + failOptions.retryAfterMs;
    health.breaker?.failed(now());
  }

  return {
    get,
    /** A request goes out (the tenant, when given, labels the channel's metrics). */
    started(id: string, tenantId?: string) {
      const health = get(id);
      health.inFlight += 1;
      if (tenantId) health.tenantId = tenantId;
      health.breaker?.started(now());
    },
    succeeded(id: string, latencyMs: number) {
      const health = get(id);
      health.inFlight = Math.max(0, health.inFlight - 1);
      success(health, latencyMs);
    },
    failed(id: string, error: string, failOptions: { credentials?: boolean; retryAfterMs?: number } = {}) {
      const health = get(id);
      health.inFlight = Math.max(0, health.inFlight - 1);
      failure(health, error, failOptions);
    },
    /** The request ended without an outcome to judge (the client went away, or the caller's error). */
    released(id: string) {
      const health = get(id);
      health.inFlight = Math.max(0, health.inFlight - 1);
      health.breaker?.released();
    },
    isCooling: (id: string) => get(id).coolingUntil > now(),
    /** The breaker's state; "closed" without a breaker. */
    circuit: (id: string): CircuitState => get(id).breaker?.state(now()) ?? "closed",
    /** Whether routing may send this channel a request now (its breaker is not open). */
    allows: (id: string) => get(id).breaker?.allows(now()) ?? true,
    /** A streamed answer's first content arrived after `ms`. */
    observeTtft(id: string, ms: number) {
      get(id).ttft.add(ms, now());
    },
    /** Remembers which tenant a channel belongs to. */
    assign(id: string, tenantId: string) {
      get(id).tenantId = tenantId;
    },
    /**
     * A scheduled probe's result. A success or an upstream failure counts like a request; an answer
     * that blames the request (400, 404, 413, 422) is kept as the last probe only.
     */
    probed(id: string, result: ProbeResult) {
      const health = get(id);
      health.lastProbe = result;
      probing = true;
      try {
        if (result.ok) success(health, result.latencyMs);
        else if (result.status === null || ![400, 404, 413, 422].includes(result.status)) {
          failure(health, `probe: ${result.error ?? `status ${result.status}`}`, {
            credentials: result.status === 401 || result.status === 403,
          });
        }
      } finally {
        probing = false;
      }
    },
    /** An upstream refused the channel's credentials: tells the listeners (auto-disable). */
    credentialsRefused(channel: { id: string; tenantId: string }, status: number, message: string) {
      get(channel.id).tenantId = channel.tenantId;
      for (const listener of refusedListeners) listener({ channelId: channel.id, tenantId: channel.tenantId, status, message });
    },
    onCredentialsRefused(listener: (event: CredentialsRefused) => void) {
      refusedListeners.add(listener);
      return () => {
        refusedListeners.delete(listener);
      };
    },
    /** Every channel seen so far (for metrics). */
    entries: () => channels.entries(),
    now,
    forget(id: string) {
      channels.delete(id);
    },
    /** Stops adopting other processes' transitions. */
    close() {
      unsubscribe?.();
    },
  };
}

export type ChannelStats = ReturnType<typeof createChannelStats>;
