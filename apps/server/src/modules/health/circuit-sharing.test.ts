import { describe, expect, it } from "vitest";
import { createEventBus } from "../../infra/bus.ts";
import { createLogger } from "../../infra/logger.ts";
import { CIRCUIT_TOPIC, createChannelStats } from "../gateway/channel-stats.ts";
import { DEFAULT_BREAKER } from "./breaker.ts";

const START = 1_700_000_000_000;

/**
 * Two processes' channel statistics on one bus (what cluster workers or Redis instances share): a
 * transition made by one process's traffic is adopted by the other, and never sent back.
 */
function twoProcesses() {
  let now = START;
  const bus = createEventBus({ prefix: "test:", logger: createLogger("silent") });
  const published: unknown[] = [];
  bus.subscribe(CIRCUIT_TOPIC, (payload) => published.push(payload));
  const clock = () => now;
  const first = createChannelStats(clock, { breaker: DEFAULT_BREAKER, bus });
  const second = createChannelStats(clock, { breaker: DEFAULT_BREAKER, bus });
  const fail = (stats: typeof first, times: number) => {
    for (let index = 0; index < times; index++) {
      stats.started("c");
      stats.failed("c", "500: down");
    }
  };
  return {
    first,
    second,
    published,
    fail,
    advance(ms: number) {
      now += ms;
    },
  };
}

describe("circuit state shared over the event bus", () => {
  it("opens on the other process when one process's failures trip it, publishing the transition once", () => {
    const { first, second, published, fail } = twoProcesses();
    fail(first, 4);
    expect(second.circuit("c")).toBe("closed");
    expect(published).toHaveLength(0);
    fail(first, 1);
    expect(first.circuit("c")).toBe("open");
    expect(second.circuit("c")).toBe("open");
    expect(second.allows("c")).toBe(false);
    expect(published).toEqual([
      { origin: expect.any(String), channelId: "c", change: { state: "open", openedAt: START, cooldownMs: 30_000 } },
    ]);
    // More failures on an open circuit are no transition: nothing more is published.
    fail(first, 3);
    fail(second, 3);
    expect(published).toHaveLength(1);
  });

  it("half-opens everywhere at the same time, and a passing trial on either process closes it on both", () => {
    const { first, second, published, fail, advance } = twoProcesses();
    fail(first, 5);
    advance(29_999);
    expect(second.circuit("c")).toBe("open");
    advance(1);
    expect(first.circuit("c")).toBe("half_open");
    expect(second.circuit("c")).toBe("half_open");
    second.started("c");
    second.succeeded("c", 120);
    expect(second.circuit("c")).toBe("closed");
    expect(first.circuit("c")).toBe("closed");
    expect(published.map((message) => (message as { change: { state: string } }).change.state)).toEqual(["open", "closed"]);
  });

  it("a failed trial opens it again on both for twice as long", () => {
    const { first, second, published, fail, advance } = twoProcesses();
    fail(first, 5);
    advance(30_000);
    fail(second, 1);
    expect(second.circuit("c")).toBe("open");
    expect(first.circuit("c")).toBe("open");
    expect(first.get("c").breaker?.cooldownMs).toBe(60_000);
    expect(published).toHaveLength(2);
  });

  it("does not publish transitions caused by probe results, which every process applies itself", () => {
    const { first, second, published } = twoProcesses();
    for (let index = 0; index < 5; index++) {
      first.probed("c", { at: START, ok: false, latencyMs: 0, status: 500, error: "down" });
    }
    expect(first.circuit("c")).toBe("open");
    expect(second.circuit("c")).toBe("closed");
    expect(published).toHaveLength(0);
  });

  it("stops adopting once closed", () => {
    const { first, second, fail } = twoProcesses();
    second.close();
    fail(first, 5);
    expect(second.circuit("c")).toBe("closed");
  });
});
