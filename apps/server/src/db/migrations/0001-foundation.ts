import type { Kysely, Migration } from "kysely";

/** Identity, tenancy, sessions, settings and audit. */
export const foundation: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable("users")
      .addColumn("id", "text", (column) => column.primaryKey())
      .addColumn("email", "text", (column) => column.notNull().unique())
      .addColumn("name", "text", (column) => column.notNull())
      .addColumn("password_hash", "text", (column) => column.notNull())
      .addColumn("is_platform_admin", "integer", (column) => column.notNull().defaultTo(0))
      .addColumn("status", "text", (column) => column.notNull().defaultTo("active"))
      .addColumn("token_version", "integer", (column) => column.notNull().defaultTo(0))
      .addColumn("created_at", "text", (column) => column.notNull())
      .addColumn("updated_at", "text", (column) => column.notNull())
      .addColumn("last_login_at", "text")
      .execute();

    await db.schema
      .createTable("tenants")
      .addColumn("id", "text", (column) => column.primaryKey())
      .addColumn("name", "text", (column) => column.notNull())
      .addColumn("slug", "text", (column) => column.notNull().unique())
      .addColumn("status", "text", (column) => column.notNull().defaultTo("active"))
      .addColumn("created_at", "text", (column) => column.notNull())
      .addColumn("updated_at", "text", (column) => column.notNull())
      .execute();

    await db.schema
      .createTable("memberships")
      .addColumn("tenant_id", "text", (column) => column.notNull().references("tenants.id").onDelete("cascade"))
      .addColumn("user_id", "text", (column) => column.notNull().references("users.id").onDelete("cascade"))
      .addColumn("role", "text", (column) => column.notNull())
      .addColumn("created_at", "text", (column) => column.notNull())
      .addPrimaryKeyConstraint("memberships_pk", ["tenant_id", "user_id"])
      .execute();
    await db.schema.createIndex("memberships_user_idx").on("memberships").column("user_id").execute();

    await db.schema
      .createTable("invitations")
      .addColumn("id", "text", (column) => column.primaryKey())
      .addColumn("tenant_id", "text", (column) => column.notNull().references("tenants.id").onDelete("cascade"))
      .addColumn("email", "text", (column) => column.notNull())
      .addColumn("role", "text", (column) => column.notNull())
      .addColumn("token_hash", "text", (column) => column.notNull().unique())
      .addColumn("invited_by", "text")
      .addColumn("expires_at", "text", (column) => column.notNull())
      .addColumn("accepted_at", "text")
      .addColumn("created_at", "text", (column) => column.notNull())
      .execute();
    await db.schema.createIndex("invitations_tenant_idx").on("invitations").column("tenant_id").execute();

    await db.schema
      .createTable("auth_sessions")
      .addColumn("id", "text", (column) => column.primaryKey())
      .addColumn("user_id", "text", (column) => column.notNull().references("users.id").onDelete("cascade"))
      .addColumn("created_at", "text", (column) => column.notNull())
      .addColumn("expires_at", "text", (column) => column.notNull())
      .addColumn("revoked_at", "text")
      .addColumn("ip", "text")
      .addColumn("user_agent", "text")
      .execute();
    await db.schema.createIndex("auth_sessions_user_idx").on("auth_sessions").column("user_id").execute();

    await db.schema
      .createTable("refresh_tokens")
      .addColumn("token_hash", "text", (column) => column.primaryKey())
      .addColumn("session_id", "text", (column) => column.notNull().references("auth_sessions.id").onDelete("cascade"))
      .addColumn("expires_at", "text", (column) => column.notNull())
      .addColumn("used_at", "text")
      .addColumn("created_at", "text", (column) => column.notNull())
      .execute();
    await db.schema.createIndex("refresh_tokens_session_idx").on("refresh_tokens").column("session_id").execute();

    await db.schema
      .createTable("platform_settings")
      .addColumn("key", "text", (column) => column.primaryKey())
      .addColumn("value", "text", (column) => column.notNull())
      .addColumn("updated_at", "text", (column) => column.notNull())
      .execute();

    await db.schema
      .createTable("tenant_settings")
      .addColumn("tenant_id", "text", (column) => column.notNull().references("tenants.id").onDelete("cascade"))
      .addColumn("key", "text", (column) => column.notNull())
      .addColumn("value", "text", (column) => column.notNull())
      .addColumn("updated_at", "text", (column) => column.notNull())
      .addPrimaryKeyConstraint("tenant_settings_pk", ["tenant_id", "key"])
      .execute();

    await db.schema
      .createTable("audit_logs")
      .addColumn("id", "text", (column) => column.primaryKey())
      .addColumn("tenant_id", "text")
      .addColumn("actor_user_id", "text")
      .addColumn("actor_email", "text")
      .addColumn("action", "text", (column) => column.notNull())
      .addColumn("target_type", "text", (column) => column.notNull())
      .addColumn("target_id", "text")
      .addColumn("ip", "text")
      .addColumn("request_id", "text")
      .addColumn("before", "text")
      .addColumn("after", "text")
      .addColumn("created_at", "text", (column) => column.notNull())
      .execute();
    await db.schema.createIndex("audit_logs_tenant_idx").on("audit_logs").columns(["tenant_id", "id"]).execute();
    await db.schema.createIndex("audit_logs_action_idx").on("audit_logs").columns(["action", "id"]).execute();
  },

  async down(db: Kysely<unknown>) {
    for (const table of [
      "audit_logs",
      "tenant_settings",
      "platform_settings",
      "refresh_tokens",
      "auth_sessions",
      "invitations",
      "memberships",
      "tenants",
      "users",
    ]) {
      await db.schema.dropTable(table).ifExists().execute();
    }
  },
};
