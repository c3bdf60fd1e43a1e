export type CircuitState = "closed" | "open" | "half_open";

export interface BreakerOptions {
  /** Consecutive failures that open the circuit. */
  failureThreshold: number;
  /** Failure share in the window that opens the circuit, once the window holds `minRequests`. */
  errorRateThreshold: number;
  minRequests: number;
  windowMs: number;
  /** The first wait before a trial; each failed trial doubles it, up to `maxCooldownMs`. */
  baseCooldownMs: number;
  maxCooldownMs: number;
  /** A trial that has given no outcome after this long no longer blocks the next one. */
  trialTimeoutMs: number;
}

export const DEFAULT_BREAKER: BreakerOptions = {
  failureThreshold: 5,
  errorRateThreshold: 0.5,
  minRequests: 10,
  windowMs: 60_000,
  baseCooldownMs: 30_000,
  maxCooldownMs: 600_000,
  trialTimeoutMs: 120_000,
};

/**
 * A transition of a breaker, as other processes adopt it: opened (until `openedAt + cooldownMs`) or
 * closed. Half-open needs no message: it follows from the open period on every process alike.
 */
export type CircuitChange = { state: "open"; openedAt: number; cooldownMs: number } | { state: "closed" };

const BUCKETS = 12;

/**
 * A circuit breaker for one channel. Closed: traffic flows; it opens after `failureThreshold`
 * consecutive failures or when the failure share over the last `windowMs` reaches the threshold.
 * Open: no traffic until the cooldown has passed, then half-open: one trial request at a time. A
 * success closes it (and resets the cooldown); a failed trial opens it again for twice as long.
 * Time is passed in (ms), so an injected clock drives it.
 */
export class CircuitBreaker {
  private current: CircuitState = "closed";
  consecutiveFailures = 0;
  /** When the circuit last opened, and how long it waits before a trial. */
  openedAt = 0;
  cooldownMs = 0;
  lastFailureAt = 0;
  private trialStartedAt = 0;
  /** Request and failure counts per time bucket of windowMs / 12, for the error rate. */
  private readonly slots = new Float64Array(BUCKETS).fill(-1);
  private readonly requests = new Uint32Array(BUCKETS);
  private readonly failures = new Uint32Array(BUCKETS);

  /** `onChange` hears this breaker's own transitions (not adopted ones), to share them. */
  constructor(
    private readonly options: BreakerOptions = DEFAULT_BREAKER,
    private readonly onChange?: (change: CircuitChange) => void,
  ) {}

  /** The state at `now`: an open circuit whose cooldown has passed is half-open. */
  state(now: number): CircuitState {
    if (this.current === "open" && now >= this.openedAt + this.cooldownMs) {
      this.current = "half_open";
      this.trialStartedAt = 0;
    }
    return this.current;
  }

  /** Whether routing may send a request: closed, or half-open with no trial under way. */
  allows(now: number): boolean {
    const state = this.state(now);
    if (state === "closed") return true;
    if (state === "open") return false;
    return this.trialStartedAt === 0 || now - this.trialStartedAt >= this.options.trialTimeoutMs;
  }

  /** A request goes out; in half-open state it is the trial. */
  started(now: number) {
    if (this.state(now) === "half_open" && this.allows(now)) this.trialStartedAt = now;
  }

  /** The request ended without an outcome (the client left): the trial slot is free again. */
  released() {
    this.trialStartedAt = 0;
  }

  succeeded(now: number) {
    this.count(now, false);
    this.consecutiveFailures = 0;
    if (this.state(now) !== "closed") {
      this.close();
      this.onChange?.({ state: "closed" });
    }
  }

  /**
   * Takes on a transition another process made: an opening that lasts longer than this breaker's own
   * (or finds it not open), or a closing. Not reported to `onChange`, so it is never sent back.
   */
  adopt(change: CircuitChange, now: number) {
    if (change.state === "closed") {
      if (this.state(now) !== "closed") this.close();
      this.consecutiveFailures = 0;
      return;
    }
    const until = change.openedAt + change.cooldownMs;
    if (this.state(now) === "open" && until <= this.openedAt + this.cooldownMs) return;
    if (until <= now) return;
    this.current = "open";
    this.openedAt = change.openedAt;
    this.cooldownMs = change.cooldownMs;
    this.trialStartedAt = 0;
  }

  failed(now: number) {
    this.count(now, true);
    this.consecutiveFailures += 1;
    this.lastFailureAt = now;
    const state = this.state(now);
    if (state === "half_open") this.open(now, Math.min(this.cooldownMs * 2, this.options.maxCooldownMs));
    else if (state === "closed" && this.trips(now)) this.open(now, this.options.baseCooldownMs);
  }

  /** Requests and failures in the window ending at `now`. */
  window(now: number): { requests: number; failures: number } {
    const slot = Math.floor(now / this.bucketMs);
    let requests = 0;
    let failures = 0;
    for (let index = 0; index < BUCKETS; index++) {
      const at = this.slots[index] as number;
      if (at < 0 || at <= slot - BUCKETS || at > slot) continue;
      requests += this.requests[index] as number;
      failures += this.failures[index] as number;
    }
    return { requests, failures };
  }

  /** When a trial may go out (open circuits only). */
  retryAt(now: number): number | null {
    return this.state(now) === "open" ? this.openedAt + this.cooldownMs : null;
  }

  get windowMs() {
    return this.options.windowMs;
  }

  private get bucketMs() {
    return Math.max(1, this.options.windowMs / BUCKETS);
  }

  private trips(now: number): boolean {
    if (this.consecutiveFailures >= this.options.failureThreshold) return true;
    const { requests, failures } = this.window(now);
    return requests >= this.options.minRequests && failures / requests >= this.options.errorRateThreshold;
  }

  private open(now: number, cooldownMs: number) {
    this.current = "open";
    this.openedAt = now;
    this.cooldownMs = cooldownMs;
    this.trialStartedAt = 0;
    this.onChange?.({ state: "open", openedAt: now, cooldownMs });
  }

  private close() {
    this.current = "closed";
    this.cooldownMs = 0;
    this.trialStartedAt = 0;
    // Failures from before the circuit closed must not trip it again at once.
    this.slots.fill(-1);
  }

  private count(now: number, failure: boolean) {
    const slot = Math.floor(now / this.bucketMs);
    const index = slot % BUCKETS;
    if (this.slots[index] !== slot) {
      this.slots[index] = slot;
      this.requests[index] = 0;
      this.failures[index] = 0;
    }
    this.requests[index] = (this.requests[index] as number) + 1;
    if (failure) this.failures[index] = (this.failures[index] as number) + 1;
  }
}
