import fc from "fast-check";
import { AggregatorRegistry, Histogram, Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { BatchHistogram } from "./histogram.ts";

const BUCKETS = [0.001, 0.01, 0.1, 1, 10];
const labelSet = fc.record({ route: fc.constantFrom("/a", "/b", 'q"uote\\'), status: fc.constantFrom("200", "429") });
const observation = fc.tuple(labelSet, fc.oneof(fc.double({ min: 0, max: 30, noNaN: true }), fc.constantFrom(0.001, 0.01, 1, 10)));

/** The same observations in prom-client's own Histogram and in a BatchHistogram, each in a registry of its own. */
function both(observations: [Record<"route" | "status", string>, number][]) {
  const own = new Registry();
  const reference = new Histogram({ name: "h", help: "help", labelNames: ["route", "status"], buckets: BUCKETS, registers: [own] });
  const batched = new Registry();
  const histogram = new BatchHistogram("h", "help", BUCKETS, batched);
  for (const [labels, value] of observations) {
    reference.observe(labels, value);
    histogram.observe(histogram.series(`${labels.route} ${labels.status}`, labels), value);
  }
  return { own, batched, histogram };
}

describe("BatchHistogram", () => {
  it("prints what prom-client's Histogram prints for the same observations", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(observation, { maxLength: 60 }), async (observations) => {
        const { own, batched } = both(observations);
        expect(await batched.metrics()).toBe(await own.metrics());
      }),
      { numRuns: 200 },
    );
  });

  it("answers the same objects, which the cluster's aggregation sums like prom-client's", async () => {
    const first: [Record<"route" | "status", string>, number][] = [
      [{ route: "/a", status: "200" }, 0.004],
      [{ route: "/a", status: "200" }, 3],
      [{ route: "/b", status: "429" }, 20],
    ];
    const second: [Record<"route" | "status", string>, number][] = [
      [{ route: "/a", status: "200" }, 0.0005],
      [{ route: "/b", status: "200" }, 0.5],
    ];
    const one = both(first);
    const two = both(second);
    expect(await one.batched.getMetricsAsJSON()).toEqual(await one.own.getMetricsAsJSON());
    const summed = AggregatorRegistry.aggregate([await one.batched.getMetricsAsJSON(), await two.batched.getMetricsAsJSON()]);
    const reference = AggregatorRegistry.aggregate([await one.own.getMetricsAsJSON(), await two.own.getMetricsAsJSON()]);
    expect(await summed.metrics()).toBe(await reference.metrics());
    expect(await summed.metrics()).toMatch(/h_count\{route="\/a",status="200"\} 3/);
  });

  it("runs its collect hook before each read, and starts over when reset", async () => {
    const registry = new Registry();
    const held: number[] = [0.5, 2];
    const histogram = new BatchHistogram("h", "help", BUCKETS, registry, () => {
      for (const value of held.splice(0)) histogram.observe(histogram.series("x", { route: "/x" }), value);
    });
    expect(await registry.metrics()).toMatch(/h_count\{route="\/x"\} 2/);
    expect(await registry.metrics()).toMatch(/h_bucket\{le="1",route="\/x"\} 1/);
    // A value that is not a finite number is left out instead of making the sum NaN.
    histogram.observe(histogram.series("x", { route: "/x" }), Number.NaN);
    expect(await registry.metrics()).toMatch(/h_count\{route="\/x"\} 2/);
    expect(await registry.metrics()).toMatch(/h_sum\{route="\/x"\} 2.5/);
    registry.resetMetrics();
    expect(await registry.metrics()).not.toMatch(/h_count/);
  });
});
