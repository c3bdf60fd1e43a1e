import { getProvider, type ProviderSpec } from "@lyss/llm";
import { beforeEach, describe, expect, it } from "vitest";
import type { RuntimeChannel } from "../channels/catalog.ts";
import { createChannelStats } from "../gateway/channel-stats.ts";
import { createRouter } from "../gateway/router.ts";
import { CircuitBreaker, DEFAULT_BREAKER } from "./breaker.ts";
import { SampleWindow } from "./sample-window.ts";

const START = 1_700_000_000_000;

describe("circuit breaker", () => {
  let now: number;
  let breaker: CircuitBreaker;
  const fail = (times: number) => {
    for (let index = 0; index < times; index++) breaker.failed(now);
  };
  const succeed = (times: number) => {
    for (let index = 0; index < times; index++) breaker.succeeded(now);
  };
  beforeEach(() => {
    now = START;
    breaker = new CircuitBreaker(DEFAULT_BREAKER);
  });

  it("opens after five consecutive failures, and a success in between resets the count", () => {
    fail(4);
    succeed(1);
    fail(4);
    expect(breaker.state(now)).toBe("closed");
    expect(breaker.allows(now)).toBe(true);
    fail(1);
    expect(breaker.state(now)).toBe("open");
    expect(breaker.allows(now)).toBe(false);
    expect(breaker.cooldownMs).toBe(30_000);
    expect(breaker.retryAt(now)).toBe(now + 30_000);
  });

  it("opens on an error rate of half or more over at least ten requests in the window", () => {
    // Alternating: never more than one failure in a row, but 50% of 10.
    for (let index = 0; index < 4; index++) {
      succeed(1);
      fail(1);
    }
    succeed(1);
    expect(breaker.window(now)).toEqual({ requests: 9, failures: 4 });
    fail(1);
    expect(breaker.window(now)).toEqual({ requests: 10, failures: 5 });
    expect(breaker.state(now)).toBe("open");
  });

  it("forgets failures that left the 60 s window", () => {
    for (let index = 0; index < 4; index++) {
      succeed(1);
      fail(1);
    }
    now += 61_000;
    succeed(1);
    fail(1);
    expect(breaker.window(now)).toEqual({ requests: 2, failures: 1 });
    expect(breaker.state(now)).toBe("closed");
    // Five failures in ten requests inside the window trip it.
    for (let index = 0; index < 3; index++) {
      succeed(1);
      fail(1);
    }
    succeed(1);
    expect(breaker.state(now)).toBe("closed");
    fail(1);
    expect(breaker.window(now)).toEqual({ requests: 10, failures: 5 });
    expect(breaker.state(now)).toBe("open");
  });

  it("turns half-open after the cooldown, lets one trial through, and closes on its success", () => {
    fail(5);
    now += 29_999;
    expect(breaker.state(now)).toBe("open");
    now += 1;
    expect(breaker.state(now)).toBe("half_open");
    expect(breaker.allows(now)).toBe(true);
    breaker.started(now);
    // One trial at a time.
    expect(breaker.allows(now)).toBe(false);
    breaker.succeeded(now);
    expect(breaker.state(now)).toBe("closed");
    expect(breaker.cooldownMs).toBe(0);
    expect(breaker.consecutiveFailures).toBe(0);
    // Closed again from scratch: four failures do not open it.
    fail(4);
    expect(breaker.state(now)).toBe("closed");
  });

  it("reopens on a failed trial with twice the cooldown, up to ten minutes, and resets after closing", () => {
    fail(5);
    const cooldowns: number[] = [breaker.cooldownMs];
    for (let round = 0; round < 7; round++) {
      now += breaker.cooldownMs;
      expect(breaker.state(now)).toBe("half_open");
      breaker.started(now);
      breaker.failed(now);
      expect(breaker.state(now)).toBe("open");
      cooldowns.push(breaker.cooldownMs);
    }
    expect(cooldowns).toEqual([30_000, 60_000, 120_000, 240_000, 480_000, 600_000, 600_000, 600_000]);
    now += 600_000;
    breaker.succeeded(now);
    expect(breaker.state(now)).toBe("closed");
    fail(5);
    expect(breaker.cooldownMs).toBe(30_000);
  });

  it("frees the trial slot when the trial ends without an outcome, or takes too long", () => {
    fail(5);
    now += 30_000;
    breaker.started(now);
    expect(breaker.allows(now)).toBe(false);
    breaker.released();
    expect(breaker.allows(now)).toBe(true);
    breaker.started(now);
    now += DEFAULT_BREAKER.trialTimeoutMs;
    expect(breaker.allows(now)).toBe(true);
  });
});

describe("sample window", () => {
  it("answers nearest-rank percentiles of the recent samples only", () => {
    const window = new SampleWindow(512, 300_000);
    expect(window.percentiles(START)).toEqual({ samples: 0, p50: null, p90: null, p99: null });
    for (let value = 1; value <= 100; value++) window.add(value, START);
    expect(window.percentiles(START)).toEqual({ samples: 100, p50: 50, p90: 90, p99: 99 });
    window.add(1000, START + 200_000);
    expect(window.percentiles(START + 300_001)).toEqual({ samples: 1, p50: 1000, p90: 1000, p99: 1000 });
  });

  it("keeps only the last samples when full", () => {
    const window = new SampleWindow(4, 60_000);
    for (const value of [100, 200, 1, 2, 3, 4]) window.add(value, START);
    expect(window.percentiles(START)).toEqual({ samples: 4, p50: 2, p90: 4, p99: 4 });
  });
});

const openai = getProvider("openai") as ProviderSpec;

function channel(id: string, priority = 0): RuntimeChannel {
  return {
    id,
    tenantId: "tenant",
    name: id,
    provider: openai,
    baseUrl: "http://127.0.0.1:1",
    credentials: { api_key: `sk-${id}` },
    models: new Set(["gpt-4o-mini"]),
    mapping: {},
    priority,
    weight: 1,
    group: "default",
    status: "enabled",
    statusReason: null,
    timeoutMs: 120_000,
    firstByteTimeoutMs: 60_000,
    extraHeaders: {},
    limits: [],
  };
}

describe("routing with circuit breakers", () => {
  let now: number;
  let stats: ReturnType<typeof createChannelStats>;
  const ids = (list: RuntimeChannel[]) => list.map((item) => item.id);
  const failTimes = (id: string, times: number) => {
    for (let index = 0; index < times; index++) {
      stats.started(id);
      stats.failed(id, "500: boom");
    }
  };
  beforeEach(() => {
    now = START;
    stats = createChannelStats(() => now, { breaker: DEFAULT_BREAKER });
  });

  it("skips channels whose circuit is open, in every strategy", () => {
    const router = createRouter(stats, () => 0.5);
    const list = [channel("primary", 10), channel("second", 5), channel("third", 0)];
    failTimes("primary", 5);
    expect(stats.circuit("primary")).toBe("open");
    for (const strategy of ["weighted_random", "round_robin", "least_connections", "best_performance", "adaptive"] as const) {
      expect(ids(router.order(list, strategy, "gpt-4o-mini"))).toEqual(["second", "third"]);
    }
  });

  it("lets a half-open channel have one trial, and takes it back once it succeeds", () => {
    const router = createRouter(stats, () => 0.5);
    const list = [channel("primary", 10), channel("backup", 0)];
    failTimes("primary", 5);
    now += 30_000;
    expect(stats.circuit("primary")).toBe("half_open");
    expect(ids(router.order(list, "weighted_random", "m"))).toEqual(["primary", "backup"]);
    stats.started("primary");
    // While the trial runs, others do not pile onto the channel.
    expect(ids(router.order(list, "weighted_random", "m"))).toEqual(["backup"]);
    stats.succeeded("primary", 40);
    expect(stats.circuit("primary")).toBe("closed");
    expect(ids(router.order(list, "weighted_random", "m"))).toEqual(["primary", "backup"]);
  });

  it("still routes when every circuit is open: the least recently failed first", () => {
    const router = createRouter(stats, () => 0.5);
    const list = [channel("a", 10), channel("b", 5), channel("c", 0)];
    failTimes("b", 5);
    now += 1000;
    failTimes("c", 5);
    now += 1000;
    failTimes("a", 5);
    expect(["a", "b", "c"].map((id) => stats.circuit(id))).toEqual(["open", "open", "open"]);
    expect(ids(router.order(list, "weighted_random", "m"))).toEqual(["b", "c", "a"]);
  });

  it("without breaker options every channel stays allowed", () => {
    const plain = createChannelStats(() => now);
    for (let index = 0; index < 20; index++) {
      plain.started("x");
      plain.failed("x", "500");
    }
    expect(plain.circuit("x")).toBe("closed");
    expect(plain.allows("x")).toBe(true);
  });
});
