import type { Kysely, Migration } from "kysely";

/**
 * In-app notifications (quota thresholds, channel status changes) and who receives each. A notification
 * is unique per tenant and dedupe key, so instances that see the same event store it once.
 */
export const notifications: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable("notifications")
      .addColumn("id", "text", (column) => column.primaryKey())
      .addColumn("tenant_id", "text", (column) => column.notNull().references("tenants.id").onDelete("cascade"))
      .addColumn("kind", "text", (column) => column.notNull())
      .addColumn("title", "text", (column) => column.notNull())
      .addColumn("message", "text", (column) => column.notNull())
      .addColumn("data", "text", (column) => column.notNull())
      .addColumn("dedupe_key", "text", (column) => column.notNull())
      .addColumn("created_at", "text", (column) => column.notNull())
      .addUniqueConstraint("notifications_dedupe_key", ["tenant_id", "dedupe_key"])
      .execute();

    // The key serves a user's list in a tenant, newest first (ids are time-ordered).
    await db.schema
      .createTable("notification_recipients")
      .addColumn("tenant_id", "text", (column) => column.notNull())
      .addColumn("user_id", "text", (column) => column.notNull().references("users.id").onDelete("cascade"))
      .addColumn("notification_id", "text", (column) => column.notNull().references("notifications.id").onDelete("cascade"))
      .addColumn("read_at", "text")
      .addPrimaryKeyConstraint("notification_recipients_pk", ["tenant_id", "user_id", "notification_id"])
      .execute();
    await db.schema
      .createIndex("notification_recipients_notification_idx")
      .on("notification_recipients")
      .column("notification_id")
      .execute();
  },

  async down(db: Kysely<unknown>) {
    await db.schema.dropTable("notification_recipients").ifExists().execute();
    await db.schema.dropTable("notifications").ifExists().execute();
  },
};
