import type { Kysely, Migration } from "kysely";

/** Channels (provider credentials), access tokens and usage records. */
export const gateway: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable("channels")
      .addColumn("id", "text", (column) => column.primaryKey())
      .addColumn("tenant_id", "text", (column) => column.notNull().references("tenants.id").onDelete("cascade"))
      .addColumn("name", "text", (column) => column.notNull())
      .addColumn("provider", "text", (column) => column.notNull())
      .addColumn("base_url", "text", (column) => column.notNull())
      .addColumn("credentials_sealed", "text", (column) => column.notNull())
      .addColumn("credentials_masked", "text", (column) => column.notNull())
      .addColumn("models", "text", (column) => column.notNull())
      .addColumn("model_mapping", "text", (column) => column.notNull())
      .addColumn("priority", "integer", (column) => column.notNull().defaultTo(0))
      .addColumn("weight", "integer", (column) => column.notNull().defaultTo(1))
      .addColumn("group_name", "text", (column) => column.notNull().defaultTo("default"))
      .addColumn("status", "text", (column) => column.notNull().defaultTo("enabled"))
      .addColumn("status_reason", "text")
      .addColumn("timeout_ms", "integer", (column) => column.notNull())
      .addColumn("first_byte_timeout_ms", "integer", (column) => column.notNull())
      .addColumn("extra_headers", "text", (column) => column.notNull())
      .addColumn("created_at", "text", (column) => column.notNull())
      .addColumn("updated_at", "text", (column) => column.notNull())
      .execute();
    await db.schema.createIndex("channels_tenant_idx").on("channels").columns(["tenant_id", "id"]).execute();

    await db.schema
      .createTable("access_tokens")
      .addColumn("id", "text", (column) => column.primaryKey())
      .addColumn("tenant_id", "text", (column) => column.notNull().references("tenants.id").onDelete("cascade"))
      .addColumn("user_id", "text", (column) => column.notNull().references("users.id").onDelete("cascade"))
      .addColumn("name", "text", (column) => column.notNull())
      .addColumn("key_hash", "text", (column) => column.notNull().unique())
      .addColumn("key_prefix", "text", (column) => column.notNull())
      .addColumn("expires_at", "text")
      .addColumn("models", "text")
      .addColumn("channel_groups", "text")
      .addColumn("ip_allowlist", "text", (column) => column.notNull())
      .addColumn("status", "text", (column) => column.notNull().defaultTo("enabled"))
      .addColumn("allow_dry_run", "integer", (column) => column.notNull().defaultTo(0))
      .addColumn("limits", "text", (column) => column.notNull())
      .addColumn("rate_limits", "text", (column) => column.notNull())
      .addColumn("last_used_at", "text")
      .addColumn("created_at", "text", (column) => column.notNull())
      .addColumn("updated_at", "text", (column) => column.notNull())
      .execute();
    await db.schema.createIndex("access_tokens_tenant_idx").on("access_tokens").columns(["tenant_id", "id"]).execute();

    await db.schema
      .createTable("usage_logs")
      .addColumn("id", "text", (column) => column.primaryKey())
      .addColumn("tenant_id", "text", (column) => column.notNull())
      .addColumn("user_id", "text")
      .addColumn("token_id", "text")
      .addColumn("channel_id", "text")
      .addColumn("provider", "text")
      .addColumn("endpoint", "text", (column) => column.notNull())
      .addColumn("requested_model", "text", (column) => column.notNull())
      .addColumn("upstream_model", "text")
      .addColumn("stream", "integer", (column) => column.notNull())
      .addColumn("status_code", "integer", (column) => column.notNull())
      .addColumn("error", "text")
      .addColumn("latency_ms", "integer", (column) => column.notNull())
      .addColumn("ttft_ms", "integer")
      .addColumn("prompt_tokens", "integer", (column) => column.notNull())
      .addColumn("completion_tokens", "integer", (column) => column.notNull())
      .addColumn("cached_tokens", "integer", (column) => column.notNull())
      .addColumn("reasoning_tokens", "integer", (column) => column.notNull())
      .addColumn("total_tokens", "integer", (column) => column.notNull())
      .addColumn("attempts", "integer", (column) => column.notNull())
      .addColumn("request_id", "text")
      .addColumn("created_at", "text", (column) => column.notNull())
      .execute();
    await db.schema.createIndex("usage_logs_tenant_idx").on("usage_logs").columns(["tenant_id", "id"]).execute();
    await db.schema.createIndex("usage_logs_token_idx").on("usage_logs").columns(["token_id", "id"]).execute();
  },

  async down(db: Kysely<unknown>) {
    for (const table of ["usage_logs", "access_tokens", "channels"]) await db.schema.dropTable(table).ifExists().execute();
  },
};
