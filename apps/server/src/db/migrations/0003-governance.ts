import type { Kysely, Migration } from "kysely";

/** Quota limits on tenants, memberships and channels; quota counters; model prices; usage cost. */
export const governance: Migration = {
  async up(db: Kysely<unknown>) {
    for (const table of ["tenants", "memberships", "channels"]) {
      await db.schema
        .alterTable(table)
        .addColumn("limits", "text", (column) => column.notNull().defaultTo("[]"))
        .execute();
    }
    await db.schema
      .alterTable("usage_logs")
      .addColumn("cost_micro_usd", "bigint", (column) => column.notNull().defaultTo(0))
      .execute();

    await db.schema
      .createTable("quota_counters")
      .addColumn("key", "text", (column) => column.primaryKey())
      .addColumn("tenant_id", "text", (column) => column.notNull())
      .addColumn("used", "bigint", (column) => column.notNull().defaultTo(0))
      .addColumn("updated_at", "text", (column) => column.notNull())
      .execute();
    await db.schema.createIndex("quota_counters_tenant_idx").on("quota_counters").column("tenant_id").execute();

    await db.schema
      .createTable("model_prices")
      .addColumn("id", "text", (column) => column.primaryKey())
      .addColumn("tenant_id", "text", (column) => column.references("tenants.id").onDelete("cascade"))
      .addColumn("model", "text", (column) => column.notNull())
      .addColumn("input_per_mtok", "bigint", (column) => column.notNull())
      .addColumn("output_per_mtok", "bigint", (column) => column.notNull())
      .addColumn("cached_input_per_mtok", "bigint")
      .addColumn("per_request", "bigint", (column) => column.notNull().defaultTo(0))
      .addColumn("updated_at", "text", (column) => column.notNull())
      .execute();
    await db.schema.createIndex("model_prices_tenant_idx").on("model_prices").columns(["tenant_id", "model"]).execute();
  },

  async down(db: Kysely<unknown>) {
    await db.schema.dropTable("model_prices").ifExists().execute();
    await db.schema.dropTable("quota_counters").ifExists().execute();
  },
};
