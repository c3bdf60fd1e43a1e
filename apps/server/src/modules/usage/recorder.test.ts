import v8 from "node:v8";
import vm from "node:vm";
import pino from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { systemClock } from "../../infra/clock.ts";
import { createTestApp, setupAdmin, type TestApp } from "../../test/test-app.ts";
import { createGatewayMetricsRecorder } from "../metrics/gateway-metrics.ts";
import type { CounterDelta } from "../quota/counters.ts";
import { type BatchSink, inlineSink } from "./batch-sink.ts";
import { createUsageRecorder } from "./recorder.ts";
import { hasCostColumn, usageRecord } from "./test-usage.ts";

/** A recorder of its own over the test app's database (SQLite, or PostgreSQL when configured). */
describe("usage recorder", () => {
  let app: TestApp;
  let tenant: string;
  let withCost: boolean;
  let settled: CounterDelta[];

  beforeEach(async () => {
    app = await createTestApp();
    tenant = (await setupAdmin(app)).tenant.id;
    withCost = await hasCostColumn(app.infra.db.kysely);
    settled = [];
  });
  afterEach(async () => app.close());

  const recorderOver = (sink: BatchSink) =>
    createUsageRecorder(
      sink,
      { logger: pino({ level: "silent" }), counters: { takeSettled: () => settled.splice(0) }, clock: systemClock },
      { intervalMs: 60_000 },
    );
  const record = (recorder: ReturnType<typeof recorderOver>, requestId: string) =>
    recorder.record(usageRecord({ tenant_id: tenant, created_at: "2025-07-01T09:00:00.000Z", request_id: requestId }, withCost));
  const stored = async () => {
    const db = app.infra.db.kysely;
    const logs = await db.selectFrom("usage_logs").select("request_id").orderBy("request_id").execute();
    const counter = await db.selectFrom("quota_counters").select("used").where("key", "=", "test:counter").executeTakeFirst();
    const rollup = await db
      .selectFrom("usage_rollups")
      .select("requests")
      .where("dimension", "=", "tenant")
      .where("period", "=", "day")
      .executeTakeFirst();
    return { logs: logs.map((row) => row.request_id), used: Number(counter?.used ?? 0), requests: Number(rollup?.requests ?? 0) };
  };

  it("keeps no record object while it waits for its batch, nor do the gateway metrics, and writes every record", async () => {
    v8.setFlagsFromString("--expose-gc");
    const collect = vm.runInNewContext("gc") as () => void;
    const recorder = recorderOver(inlineSink(app.infra.db.kysely));
    recorder.onRecord(createGatewayMetricsRecorder(app.infra.metrics).record);
    // Made and recorded in a function of their own: a suspended async function keeps its registers.
    const recordAll = () =>
      Array.from({ length: 200 }, (_, index) => {
        const one = usageRecord({ tenant_id: tenant, created_at: "2025-07-01T09:00:00.000Z", request_id: `r${1000 + index}` }, withCost);
        recorder.record(one);
        return new WeakRef(one);
      });
    const kept = recordAll();
    // WeakRefs made in this turn hold their objects until it ends; then a full collection clears them.
    await new Promise((resolve) => setImmediate(resolve));
    collect();
    expect(kept.filter((ref) => ref.deref() !== undefined)).toHaveLength(0);
    await recorder.flush();
    expect((await stored()).logs).toEqual(Array.from({ length: 200 }, (_, index) => `r${1000 + index}`));
    expect(await app.infra.metrics.exposition()).toMatch(/lyss_gateway_requests_total\{[^}]*\} 200/);
  });

  it("writes a failed batch again as it was, before newer records, and each record and counter lands once", async () => {
    const recorder = recorderOver(inlineSink(app.infra.db.kysely));
    const db = app.infra.db.kysely;
    record(recorder, "a");
    settled.push({ key: "test:counter", tenantId: tenant, delta: 3 });
    await db.schema.alterTable("usage_logs").renameTo("usage_logs_away").execute();
    await recorder.flush();
    await db.schema.alterTable("usage_logs_away").renameTo("usage_logs").execute();
    expect(await stored()).toEqual({ logs: [], used: 0, requests: 0 });
    record(recorder, "b");
    settled.push({ key: "test:counter", tenantId: tenant, delta: 4 });
    await recorder.flush();
    expect(await stored()).toEqual({ logs: ["a", "b"], used: 7, requests: 2 });
  });

  /** A sink whose `nth` batch lands and then loses its answer (as when the writer thread dies right after the commit). */
  const losingAnswer = (nth: number) => {
    const inline = inlineSink(app.infra.db.kysely);
    const sink = {
      writes: 0,
      async write(batch: Parameters<BatchSink["write"]>[0]) {
        await inline.write(batch);
        sink.writes += 1;
        if (sink.writes === nth) throw new Error("the usage writer thread exited (code 1)");
      },
      close: inline.close,
    };
    return sink;
  };

  it("takes a batch whose answer was lost after it landed as landed: nothing counts twice", async () => {
    const losing = losingAnswer(1);
    const recorder = recorderOver(losing);
    record(recorder, "a");
    settled.push({ key: "test:counter", tenantId: tenant, delta: 5 });
    await recorder.flush();
    record(recorder, "b");
    await recorder.flush();
    expect(losing.writes).toBe(3);
    expect(await stored()).toEqual({ logs: ["a", "b"], used: 5, requests: 2 });
  });

  it("takes a batch of counters alone whose answer was lost after it landed as landed: it counts once", async () => {
    // The second batch (the counters settled after their record had gone) lands, and its answer is lost.
    const losing = losingAnswer(2);
    const recorder = recorderOver(losing);
    record(recorder, "a");
    await recorder.flush();
    settled.push({ key: "test:counter", tenantId: tenant, delta: 6 });
    await recorder.flush();
    await recorder.flush();
    expect(losing.writes).toBe(3);
    expect(await stored()).toEqual({ logs: ["a"], used: 6, requests: 1 });
    const landed = await app.infra.db.kysely.selectFrom("usage_batches").select("id").execute();
    expect(landed).toHaveLength(2);
  });

  it("lets go of the ids of batches that landed more than a day before", async () => {
    const db = app.infra.db.kysely;
    await db.insertInto("usage_batches").values({ id: "old", landed_at: "2000-01-01T00:00:00.000Z" }).execute();
    const recorder = recorderOver(inlineSink(db));
    record(recorder, "a");
    await recorder.flush();
    const ids = (await db.selectFrom("usage_batches").select("id").execute()).map((row) => row.id);
    expect(ids).toHaveLength(1);
    expect(ids).not.toContain("old");
  });

  it("writes every record once when flushes are asked for side by side", async () => {
    const recorder = recorderOver(inlineSink(app.infra.db.kysely));
    const flushes: Promise<void>[] = [];
    for (let index = 0; index < 30; index++) {
      record(recorder, `r${String(index).padStart(2, "0")}`);
      settled.push({ key: "test:counter", tenantId: tenant, delta: 1 });
      if (index % 3 === 0) flushes.push(recorder.flush(), recorder.flush());
    }
    flushes.push(recorder.flush());
    await Promise.all(flushes);
    const { logs, used, requests } = await stored();
    expect(logs).toHaveLength(30);
    expect(new Set(logs).size).toBe(30);
    expect({ used, requests }).toEqual({ used: 30, requests: 30 });
  });
});
