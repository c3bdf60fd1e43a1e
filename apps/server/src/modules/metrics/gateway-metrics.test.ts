import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { UsageLogsTable } from "../../db/schema.ts";
import { createMetrics } from "../../infra/metrics.ts";
import { usageRecord } from "../usage/test-usage.ts";
import { createGatewayMetricsRecorder } from "./gateway-metrics.ts";

describe("gateway call metrics", () => {
  it("count runs of calls with the same labels as they count each call, read at any point", async () => {
    const pick = <T>(...values: T[]) => fc.constantFrom(...values);
    const labels = {
      tenant_id: pick("t1", "t2"),
      requested_model: pick("m1", "m2"),
      channel_id: pick("c1", "c2", null),
      status_code: pick(200, 429, 500),
    };
    // Each call is the one before with one label changed, repeated a few times.
    const change = fc.oneof(...Object.entries(labels).map(([name, value]) => value.map((one) => ({ [name]: one }))));
    // After some runs /metrics is read: what was counted so far goes to the counters.
    const calls = fc.tuple(fc.record(labels), fc.array(fc.tuple(change, fc.integer({ min: 1, max: 3 }), fc.boolean()), { maxLength: 20 }));
    await fc.assert(
      fc.asyncProperty(calls, async ([first, changes]) => {
        const metrics = createMetrics();
        const recorder = createGatewayMetricsRecorder(metrics);
        const expected = new Map<string, number>();
        let current = first;
        for (const [changed, times, scrape] of changes) {
          current = { ...current, ...changed };
          const record: UsageLogsTable = { id: "r", ...usageRecord({ ...current, created_at: "2026-12-04T10:00:00.000Z" }) };
          for (let time = 0; time < times; time++) recorder.record(record);
          const key = `${current.tenant_id}|${current.requested_model}|${current.channel_id ?? "none"}|${current.status_code}`;
          expected.set(key, (expected.get(key) ?? 0) + times);
          if (scrape) await metrics.exposition();
        }
        await metrics.exposition();
        const counted = new Map(
          (await metrics.gatewayRequests.get()).values.map(({ labels: l, value }) => [
            `${l.tenant}|${l.model}|${l.channel}|${l.status}`,
            value,
          ]),
        );
        expect(counted).toEqual(expected);
      }),
      { numRuns: 50 },
    );
  });
});
