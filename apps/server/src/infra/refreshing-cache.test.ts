import { describe, expect, it } from "vitest";
import { RefreshingCache } from "./refreshing-cache.ts";

/** A source of values the test controls: each load waits until the test settles it. */
function source() {
  const loads: { key: string; settle: (value: string | undefined) => void; fail: (error: Error) => void }[] = [];
  const load = (key: string) => new Promise<string | undefined>((resolve, reject) => loads.push({ key, settle: resolve, fail: reject }));
  return { loads, load };
}

describe("RefreshingCache", () => {
  it("keeps an expired value through a refresh that fails, and tries again with the next caller", async () => {
    let now = 10_000;
    const { loads, load } = source();
    const cache = new RefreshingCache({ max: 10, ttlMs: 1000, now: () => now, load });
    const first = cache.get("a");
    loads[0]?.settle("one");
    expect(await first).toBe("one");
    now += 1500;
    expect(cache.get("a")).toBe("one");
    expect(cache.get("a")).toBe("one");
    expect(loads).toHaveLength(2);
    loads[1]?.fail(new Error("database down"));
    await Promise.resolve();
    await Promise.resolve();
    expect(cache.get("a")).toBe("one");
    expect(loads).toHaveLength(3);
    loads[2]?.settle("two");
    await Promise.resolve();
    await Promise.resolve();
    expect(cache.get("a")).toBe("two");
    expect(loads).toHaveLength(3);
  });

  it("waits for the one load when knowing there is none has expired", async () => {
    let now = 10_000;
    const { loads, load } = source();
    const cache = new RefreshingCache({ max: 10, ttlMs: 60_000, missingTtlMs: 1000, now: () => now, load });
    const first = cache.get("a");
    loads[0]?.settle(undefined);
    expect(await first).toBeUndefined();
    expect(cache.get("a")).toBeUndefined();
    now += 1500;
    const asks = [cache.get("a"), cache.get("a")];
    expect(asks[0]).toBeInstanceOf(Promise);
    expect(asks[1]).toBe(asks[0]);
    loads[1]?.settle("made meanwhile");
    expect(await asks[0]).toBe("made meanwhile");
    expect(cache.get("a")).toBe("made meanwhile");
  });

  it("does not keep what a load read before the key was dropped", async () => {
    const { loads, load } = source();
    const cache = new RefreshingCache({ max: 10, load });
    const before = cache.get("a");
    cache.delete("a");
    const after = cache.get("a");
    expect(after).not.toBe(before);
    loads[0]?.settle("old");
    expect(await before).toBe("old");
    expect(cache.get("a")).toBe(after);
    loads[1]?.settle("new");
    expect(await after).toBe("new");
    expect(cache.get("a")).toBe("new");
  });

  it("answers a load's failure to every caller waiting for it, and keeps nothing", async () => {
    const { loads, load } = source();
    const cache = new RefreshingCache({ max: 10, load });
    const asks = [cache.get("a"), cache.get("a")];
    loads[0]?.fail(new Error("database down"));
    for (const ask of asks) await expect(ask).rejects.toThrow("database down");
    expect(cache.get("a")).toBeInstanceOf(Promise);
    expect(loads).toHaveLength(2);
  });

  it("holds at most max entries, pushing out the least recently used", async () => {
    const cache = new RefreshingCache({ max: 2, load: async (key: string) => key.toUpperCase() });
    for (const key of ["a", "b"]) await cache.get(key);
    expect(cache.get("a")).toBe("A");
    await cache.get("c");
    expect(cache.size).toBe(2);
    expect(cache.get("a")).toBe("A");
    expect(cache.get("b")).toBeInstanceOf(Promise);
  });
});
