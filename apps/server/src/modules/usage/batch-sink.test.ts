import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Worker } from "node:worker_threads";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { migrateToLatest } from "../../db/migrate.ts";
import type { UsageLogsTable } from "../../db/schema.ts";
import { type Db, openSqlite } from "../../infra/db.ts";
import { newId } from "../../infra/ids.ts";
import { type BatchSink, startWriter, threadSink } from "./batch-sink.ts";
import { type PackedBatch, packBatch } from "./batch-wire.ts";
import type { UsageBatch } from "./batch-write.ts";
import { usageRecord } from "./test-usage.ts";

/** The SQLite writer thread, against a real database file read back through a second connection. */
describe("usage writer thread (SQLite)", () => {
  let dir: string;
  let file: string;
  let db: Db;
  let sink: BatchSink;

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "lyss-sink-"));
    file = path.join(dir, "lyss.db");
    db = openSqlite(file);
    await migrateToLatest(db);
    sink = threadSink(file);
  });
  afterEach(async () => {
    await sink.close();
    await db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const record = (id: string, fields: Parameters<typeof usageRecord>[0]): UsageLogsTable => ({ id, ...usageRecord(fields, true) });
  const batch = (records: UsageLogsTable[], counters: UsageBatch["counters"] = []): PackedBatch =>
    packBatch({ id: newId(), records, counters, at: "2025-07-01T10:00:00.000Z" });

  it("lands a batch's records, rollups and quota counters together, before its write resolves", async () => {
    await sink.write(
      batch(
        [
          record("r1", { tenant_id: "t1", created_at: "2025-07-01T09:15:00.000Z", user_id: "u1", prompt_tokens: 7 }),
          record("r2", { tenant_id: "t1", created_at: "2025-07-01T09:45:00.000Z", user_id: "u1", prompt_tokens: 3 }),
        ],
        [{ key: "token:k:requests:total", tenantId: "t1", delta: 2 }],
      ),
    );
    const rows = await db.kysely.selectFrom("usage_logs").select(["id", "prompt_tokens"]).orderBy("id").execute();
    expect(rows).toEqual([
      { id: "r1", prompt_tokens: 7 },
      { id: "r2", prompt_tokens: 3 },
    ]);
    const hour = await db.kysely
      .selectFrom("usage_rollups")
      .select(["requests", "prompt_tokens"])
      .where("dimension", "=", "user")
      .where("period", "=", "hour")
      .executeTakeFirst();
    expect(hour).toEqual({ requests: 2, prompt_tokens: 10 });
    const counter = await db.kysely.selectFrom("quota_counters").select(["used", "updated_at"]).executeTakeFirst();
    expect(counter).toEqual({ used: 2, updated_at: "2025-07-01T10:00:00.000Z" });

    // A second batch adds to the same counter and rollup.
    await sink.write(
      batch(
        [record("r3", { tenant_id: "t1", created_at: "2025-07-01T09:50:00.000Z", user_id: "u1" })],
        [{ key: "token:k:requests:total", tenantId: "t1", delta: 1 }],
      ),
    );
    expect((await db.kysely.selectFrom("quota_counters").select("used").executeTakeFirst())?.used).toBe(3);
  });

  it("rejects a batch the database refuses, with the database's reason, and lands nothing of it", async () => {
    const broken = {
      ...record("bad", { tenant_id: "t1", created_at: "2025-07-01T09:00:00.000Z" }),
      endpoint: null,
    } as unknown as UsageLogsTable;
    await expect(
      sink.write(
        batch(
          [record("ok", { tenant_id: "t1", created_at: "2025-07-01T09:00:00.000Z" }), broken],
          [{ key: "c", tenantId: "t1", delta: 5 }],
        ),
      ),
    ).rejects.toThrow(/NOT NULL/i);
    expect(await db.kysely.selectFrom("usage_logs").select("id").execute()).toEqual([]);
    expect(await db.kysely.selectFrom("usage_rollups").select("requests").execute()).toEqual([]);
    expect(await db.kysely.selectFrom("quota_counters").select("used").execute()).toEqual([]);
    // The thread is still there for the next batch.
    await sink.write(batch([record("ok", { tenant_id: "t1", created_at: "2025-07-01T09:00:00.000Z" })]));
    expect(await db.kysely.selectFrom("usage_logs").select("id").execute()).toEqual([{ id: "ok" }]);
  });

  it("writes batches in the order they were sent, and starts a thread again after close", async () => {
    const writes = Array.from({ length: 5 }, (_, index) =>
      sink.write(
        batch([record(`b${index}`, { tenant_id: "t1", created_at: "2025-07-01T09:00:00.000Z" })], [{ key: "c", tenantId: "t1", delta: 1 }]),
      ),
    );
    await Promise.all(writes);
    await sink.close();
    await sink.write(batch([record("after", { tenant_id: "t1", created_at: "2025-07-01T09:00:00.000Z" })]));
    const ids = (await db.kysely.selectFrom("usage_logs").select("id").orderBy("id").execute()).map((row) => row.id);
    expect(ids).toEqual(["after", "b0", "b1", "b2", "b3", "b4"]);
    expect((await db.kysely.selectFrom("quota_counters").select("used").executeTakeFirst())?.used).toBe(5);
  });

  it("lands a batch written while the thread closes, on a thread of its own", async () => {
    await sink.write(batch([record("before", { tenant_id: "t1", created_at: "2025-07-01T09:00:00.000Z" })]));
    const closing = sink.close();
    const during = sink.write(batch([record("during", { tenant_id: "t1", created_at: "2025-07-01T09:00:00.000Z" })]));
    await closing;
    await during;
    const ids = (await db.kysely.selectFrom("usage_logs").select("id").orderBy("id").execute()).map((row) => row.id);
    expect(ids).toEqual(["before", "during"]);
  });

  it("fails the batch in flight when its thread dies, and lands it once when it is given again, on a new thread", async () => {
    const threads: Worker[] = [];
    const own = threadSink(file, (path) => {
      const thread = startWriter(path);
      threads.push(thread);
      return thread;
    });
    try {
      const first = batch(
        [record("first", { tenant_id: "t1", created_at: "2025-07-01T09:00:00.000Z" })],
        [{ key: "c", tenantId: "t1", delta: 2 }],
      );
      await own.write(first);
      // Written again, as after an answer that was lost: found landed, and nothing counts twice.
      await own.write(first);
      // The thread dies between two batches: the next one starts another.
      await threads[0]?.terminate();
      await own.write(batch([record("second", { tenant_id: "t1", created_at: "2025-07-01T09:00:00.000Z" })]));
      expect(threads).toHaveLength(2);
      // The thread dies with a batch in flight: that batch fails. (Its transaction may have committed
      // before the thread stopped, with only the answer lost: the thread cannot be stopped inside it.)
      const inFlight = batch(
        [record("lost", { tenant_id: "t1", created_at: "2025-07-01T09:00:00.000Z" })],
        [{ key: "c", tenantId: "t1", delta: 7 }],
      );
      const lost = own.write(inFlight);
      await threads[1]?.terminate();
      await expect(lost).rejects.toThrow(/exited/);
      // Given again as it was (as the recorder does with a failed batch), it lands once, on a third
      // thread, whether or not the first try had landed.
      await own.write(inFlight);
      expect(threads).toHaveLength(3);
      const ids = (await db.kysely.selectFrom("usage_logs").select("id").orderBy("id").execute()).map((row) => row.id);
      expect(ids).toEqual(["first", "lost", "second"]);
      expect((await db.kysely.selectFrom("quota_counters").select("used").executeTakeFirst())?.used).toBe(9);
      const rollup = await db.kysely
        .selectFrom("usage_rollups")
        .select("requests")
        .where("dimension", "=", "tenant")
        .where("period", "=", "day")
        .executeTakeFirst();
      expect(rollup?.requests).toBe(3);
    } finally {
      await own.close();
    }
  });
});
