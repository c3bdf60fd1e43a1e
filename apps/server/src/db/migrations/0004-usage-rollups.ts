import type { Kysely, Migration } from "kysely";

const METRICS = [
  "requests",
  "errors",
  "prompt_tokens",
  "completion_tokens",
  "cached_tokens",
  "total_tokens",
  "cost_micro_usd",
  "latency_ms_sum",
] as const;

/**
 * Hourly and daily usage rollups, kept up to date by every usage batch, and an index on the time of
 * raw usage records so retention deletes old ones without a full scan.
 */
export const usageRollups: Migration = {
  async up(db: Kysely<unknown>) {
    // No foreign key to tenants, like usage_logs: a batch for a tenant deleted meanwhile must still land.
    let table = db.schema
      .createTable("usage_rollups")
      .addColumn("tenant_id", "text", (column) => column.notNull())
      .addColumn("period", "text", (column) => column.notNull())
      .addColumn("bucket_start", "text", (column) => column.notNull())
      .addColumn("dimension", "text", (column) => column.notNull())
      .addColumn("dimension_value", "text", (column) => column.notNull());
    // Sums outgrow 32 bits (tokens and micro-USD per day), so every metric is a 64-bit integer.
    for (const metric of METRICS) table = table.addColumn(metric, "bigint", (column) => column.notNull().defaultTo(0));
    // The key serves the upserts and the time series of one value. The range index serves top-N over a
    // range; it carries the value and the metrics so that query reads the index alone (SQLite has no
    // INCLUDE, so they are key columns on both databases).
    await table
      .addPrimaryKeyConstraint("usage_rollups_pk", ["tenant_id", "period", "dimension", "dimension_value", "bucket_start"])
      .execute();
    await db.schema
      .createIndex("usage_rollups_range_idx")
      .on("usage_rollups")
      .columns(["tenant_id", "period", "dimension", "bucket_start", "dimension_value", ...METRICS])
      .execute();
    await db.schema.createIndex("usage_logs_created_idx").on("usage_logs").column("created_at").execute();
  },

  async down(db: Kysely<unknown>) {
    await db.schema.dropIndex("usage_logs_created_idx").ifExists().execute();
    await db.schema.dropTable("usage_rollups").ifExists().execute();
  },
};
