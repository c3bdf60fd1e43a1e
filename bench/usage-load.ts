import SQLite from "better-sqlite3";
import pg from "pg";
import { ROLLUP_METRICS, type RollupRow } from "../apps/server/src/modules/usage/rollups.ts";
import type { RawUsage } from "./usage-generator.ts";

/**
 * Bulk loaders for the benchmark: they write generated rows straight into a database that the app has
 * migrated (better-sqlite3 prepared statements on a second connection; PostgreSQL `unnest` inserts), far
 * faster than going through the recorder one record at a time.
 */
export interface UsageSink {
  tenantId: string;
  writeRaw(rows: RawUsage[]): Promise<void>;
  writeRollups(rows: RollupRow[]): Promise<void>;
  /** Refreshes the planner's statistics, as a database in service would have them, and disconnects. */
  finish(): Promise<void>;
  /** Disconnects without more work (after a failure); harmless after `finish`. */
  close(): Promise<void>;
}

/** Without a cost column (before migration 0003) the recorder counts every record as free. */
function withoutCost(rows: RollupRow[], hasCost: boolean) {
  return hasCost ? rows : rows.map((row) => ({ ...row, cost_micro_usd: 0 }));
}

type PgType = "text" | "int" | "bigint";
const RAW_COLUMNS: [keyof RawUsage | "tenant_id", PgType][] = [
  ["id", "text"],
  ["tenant_id", "text"],
  ["user_id", "text"],
  ["token_id", "text"],
  ["channel_id", "text"],
  ["provider", "text"],
  ["endpoint", "text"],
  ["requested_model", "text"],
  ["upstream_model", "text"],
  ["stream", "int"],
  ["status_code", "int"],
  ["error", "text"],
  ["latency_ms", "int"],
  ["ttft_ms", "int"],
  ["prompt_tokens", "int"],
  ["completion_tokens", "int"],
  ["cached_tokens", "int"],
  ["reasoning_tokens", "int"],
  ["total_tokens", "int"],
  ["attempts", "int"],
  ["request_id", "text"],
  ["cost_micro_usd", "bigint"],
  ["created_at", "text"],
];
const ROLLUP_COLUMNS: [keyof RollupRow, PgType][] = [
  ["tenant_id", "text"],
  ["period", "text"],
  ["bucket_start", "text"],
  ["dimension", "text"],
  ["dimension_value", "text"],
  ...ROLLUP_METRICS.map((metric): [keyof RollupRow, PgType] => [metric, "bigint"]),
];

/** The raw columns the database has: cost_micro_usd only once migration 0003 added it. */
const rawColumns = (present: Set<string>) => RAW_COLUMNS.filter(([name]) => present.has(name));

function valuesOf(row: RawUsage, tenantId: string, columns: typeof RAW_COLUMNS) {
  return columns.map(([name]) => (name === "tenant_id" ? tenantId : row[name]));
}

export function sqliteSink(file: string, tenantId: string): UsageSink {
  const database = new SQLite(file);
  database.pragma("busy_timeout = 15000");
  database.pragma("synchronous = OFF");
  // Raw rows arrive in random time order: a large cache keeps the created_at index's pages in memory.
  database.pragma("cache_size = -1048576");
  const present = new Set((database.pragma("table_info(usage_logs)") as { name: string }[]).map((column) => column.name));
  const columns = rawColumns(present);
  const insertRaw = database.prepare(
    `insert into usage_logs (${columns.map(([name]) => name).join(", ")}) values (${columns.map(() => "?").join(", ")})`,
  );
  const insertRollup = database.prepare(
    `insert into usage_rollups (${ROLLUP_COLUMNS.map(([name]) => name).join(", ")}) values (${ROLLUP_COLUMNS.map(() => "?").join(", ")})`,
  );
  const raw = database.transaction((rows: RawUsage[]) => {
    for (const row of rows) insertRaw.run(valuesOf(row, tenantId, columns));
  });
  const rollups = database.transaction((rows: RollupRow[]) => {
    for (const row of withoutCost(rows, present.has("cost_micro_usd"))) insertRollup.run(ROLLUP_COLUMNS.map(([name]) => row[name]));
  });
  return {
    tenantId,
    async writeRaw(rows) {
      raw(rows);
    },
    async writeRollups(rows) {
      for (let index = 0; index < rows.length; index += 50_000) rollups(rows.slice(index, index + 50_000));
    },
    async finish() {
      database.exec("analyze");
      database.pragma("wal_checkpoint(TRUNCATE)");
      database.close();
    },
    async close() {
      if (database.open) database.close();
    },
  };
}

/** `insert … select * from unnest($1::text[], …)`: one statement and one round trip per chunk. */
async function unnestInsert<T>(
  client: pg.Client,
  table: string,
  columns: [string, PgType][],
  rows: T[],
  pick: (row: T, column: string) => unknown,
) {
  for (let index = 0; index < rows.length; index += 10_000) {
    const chunk = rows.slice(index, index + 10_000);
    const arrays = columns.map(([name]) => chunk.map((row) => pick(row, name)));
    const casts = columns.map(([, type], position) => `$${position + 1}::${type}[]`).join(", ");
    await client.query(`insert into ${table} (${columns.map(([name]) => name).join(", ")}) select * from unnest(${casts})`, arrays);
  }
}

export async function postgresSink(url: string, tenantId: string): Promise<UsageSink> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query("set synchronous_commit = off");
  const result = await client.query<{ column_name: string }>(
    "select column_name from information_schema.columns where table_name = 'usage_logs'",
  );
  const present = new Set(result.rows.map((row) => row.column_name));
  const columns = rawColumns(present);
  let open = true;
  return {
    tenantId,
    async writeRaw(rows) {
      await unnestInsert(client, "usage_logs", columns, rows, (row, name) =>
        name === "tenant_id" ? tenantId : row[name as keyof RawUsage],
      );
    },
    async writeRollups(rows) {
      const stored = withoutCost(rows, present.has("cost_micro_usd"));
      await unnestInsert(client, "usage_rollups", ROLLUP_COLUMNS, stored, (row, name) => row[name as keyof RollupRow]);
    },
    async finish() {
      await client.query("vacuum analyze usage_logs");
      await client.query("vacuum analyze usage_rollups");
      open = false;
      await client.end();
    },
    async close() {
      if (open) await client.end().catch(() => undefined);
      open = false;
    },
  };
}
