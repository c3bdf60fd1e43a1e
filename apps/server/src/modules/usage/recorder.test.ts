import pino from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { systemClock } from "../../infra/clock.ts";
import { createTestApp, setupAdmin, type TestApp } from "../../test/test-app.ts";
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

  it("takes a batch whose answer was lost after it landed as landed: nothing counts twice", async () => {
    const inline = inlineSink(app.infra.db.kysely);
    let answers = 0;
    // The batch lands, then its answer is lost (as when the writer thread dies right after the commit).
    const losing: BatchSink = {
      async write(batch) {
        await inline.write(batch);
        answers += 1;
        if (answers === 1) throw new Error("the usage writer thread exited (code 1)");
      },
      close: inline.close,
    };
    const recorder = recorderOver(losing);
    record(recorder, "a");
    settled.push({ key: "test:counter", tenantId: tenant, delta: 5 });
    await recorder.flush();
    record(recorder, "b");
    await recorder.flush();
    expect(answers).toBe(3);
    expect(await stored()).toEqual({ logs: ["a", "b"], used: 5, requests: 2 });
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
