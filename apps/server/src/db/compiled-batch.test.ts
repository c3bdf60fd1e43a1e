import { afterEach, describe, expect, it } from "vitest";
import { createTestApp, type TestApp } from "../test/test-app.ts";
import { compiledBatch, statementSizes } from "./compiled-batch.ts";
import type { QuotaCountersTable } from "./schema.ts";

const COLUMNS = ["key", "tenant_id", "used", "updated_at"] as const;

describe("compiled batch statements", () => {
  let app: TestApp | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it("cuts a batch into statements of the most rows, then the rest in powers of two", () => {
    expect(statementSizes(250, 100)).toEqual([100, 100, 32, 16, 2]);
    expect(statementSizes(100, 100)).toEqual([100]);
    expect(statementSizes(99, 100)).toEqual([64, 32, 2, 1]);
    expect(statementSizes(0, 100)).toEqual([]);
    expect(statementSizes(7, 1)).toEqual([1, 1, 1, 1, 1, 1, 1]);
    for (let count = 0; count <= 450; count++) {
      const sizes = statementSizes(count, 200);
      expect(sizes.reduce((sum, size) => sum + size, 0)).toBe(count);
      expect(sizes.every((size) => size === 200 || (size < 200 && Number.isInteger(Math.log2(size))))).toBe(true);
    }
  });

  it("builds a statement for at most the most rows and each power of two below it, whatever the batches' sizes", async () => {
    app = await createTestApp();
    const db = app.infra.db.kysely;
    const built: number[] = [];
    const insert = compiledBatch<QuotaCountersTable>(COLUMNS, 100, (kysely, rows) => {
      built.push(rows.length);
      return kysely.insertInto("quota_counters").values(rows as never);
    });
    let written = 0;
    for (let count = 1; count <= 120; count++) {
      const rows = Array.from({ length: count }, (_, index) => ({
        key: `sizes:${count}:${index}`,
        tenant_id: "t",
        used: index,
        updated_at: "x",
      }));
      await insert(db, rows);
      written += count;
    }
    expect(built.sort((a, b) => a - b)).toEqual([1, 2, 4, 8, 16, 32, 64, 100]);
    const stored = await db
      .selectFrom("quota_counters")
      .select((eb) => eb.fn.countAll<number>().as("n"))
      .where("key", "like", "sizes:%")
      .executeTakeFirstOrThrow();
    expect(Number(stored.n)).toBe(written);
  });

  it("writes every row of a batch in statements of the given size, the rest in smaller ones, with nulls bound", async () => {
    app = await createTestApp();
    const db = app.infra.db.kysely;
    const insert = compiledBatch<QuotaCountersTable>(COLUMNS, 100, (kysely, rows) =>
      kysely.insertInto("quota_counters").values(rows as never),
    );
    const rows = Array.from({ length: 250 }, (_, index) => ({
      key: `batch:${String(index).padStart(3, "0")}`,
      tenant_id: "t",
      used: index,
      updated_at: "2026-12-01T00:00:00.000Z",
    }));
    await insert(db, rows);
    // The same shapes again: the kept text is reused and binds the new values.
    await insert(
      db,
      rows.slice(0, 50).map((row) => ({ ...row, key: `again:${row.key}`, used: row.used + 1000 })),
    );
    const stored = await db.selectFrom("quota_counters").select(["key", "used"]).where("key", "like", "%batch:%").orderBy("key").execute();
    expect(stored).toHaveLength(300);
    expect(stored.filter((row) => row.key.startsWith("batch:")).map((row) => Number(row.used))).toEqual(rows.map((row) => row.used));
    expect(stored.find((row) => row.key === "again:batch:049")?.used).toBe(1049);
  });

  it("refuses a statement that binds anything besides the rows' values", async () => {
    app = await createTestApp();
    const db = app.infra.db.kysely;
    const insert = compiledBatch<QuotaCountersTable>(COLUMNS, 10, (kysely, rows) =>
      kysely
        .insertInto("quota_counters")
        .values(rows as never)
        .onConflict((conflict) => conflict.column("key").doUpdateSet({ updated_at: "a literal" })),
    );
    await expect(insert(db, [{ key: "k", tenant_id: "t", used: 1, updated_at: "x" }])).rejects.toThrow(/binds 5 values, not 4/);
    expect(await db.selectFrom("quota_counters").selectAll().where("key", "=", "k").execute()).toEqual([]);
  });
});
