import type { Kysely, Migration } from "kysely";

/**
 * The usage batches that landed in the last day, by id. A batch written again because its answer was
 * lost (the writer thread or the database connection went away between the commit and the reply) is
 * found here and left alone: its records, rollups and quota counters count once, a batch of counters
 * alone included.
 */
export const usageBatches: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable("usage_batches")
      .addColumn("id", "text", (column) => column.primaryKey())
      .addColumn("landed_at", "text", (column) => column.notNull())
      .execute();
    await db.schema.createIndex("usage_batches_landed_idx").on("usage_batches").column("landed_at").execute();
  },

  async down(db: Kysely<unknown>) {
    await db.schema.dropTable("usage_batches").ifExists().execute();
  },
};
