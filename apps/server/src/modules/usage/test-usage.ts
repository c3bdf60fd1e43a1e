import { type Kysely, sql } from "kysely";
import type { Database } from "../../db/schema.ts";
import type { UsageRecord } from "./recorder.ts";
import { ROLLUP_METRICS, type RollupRow } from "./rollups.ts";

/** Test helpers: usage records as the gateway writes them, and rollups computed straight from usage_logs. */

let sequence = 0;

/** Whether usage_logs has the cost column (migration 0003); records carry a cost only then. */
export async function hasCostColumn(db: Kysely<Database>): Promise<boolean> {
  const tables = await db.introspection.getTables();
  return tables.some((table) => table.name === "usage_logs" && table.columns.some((column) => column.name === "cost_micro_usd"));
}

export function usageRecord(
  fields: Partial<Omit<UsageRecord, "cost_micro_usd">> & { tenant_id: string; created_at: string; cost_micro_usd?: number },
  withCost = true,
): UsageRecord {
  sequence += 1;
  const { cost_micro_usd: cost, ...rest } = fields;
  const record = {
    user_id: null,
    token_id: null,
    channel_id: null,
    provider: "openai",
    endpoint: "/v1/chat/completions",
    requested_model: "gpt-4o-mini",
    upstream_model: "gpt-4o-mini",
    stream: 0,
    status_code: 200,
    error: null,
    latency_ms: 100 + sequence,
    ttft_ms: null,
    prompt_tokens: 10 + sequence,
    completion_tokens: 5 + (sequence % 7),
    cached_tokens: sequence % 3,
    reasoning_tokens: 0,
    total_tokens: 0,
    attempts: 1,
    request_id: `request-${sequence}`,
    ...rest,
    ...(withCost ? { cost_micro_usd: cost ?? 1000 + sequence } : {}),
  };
  if (fields.total_tokens === undefined) record.total_tokens = record.prompt_tokens + record.completion_tokens;
  return record as UsageRecord;
}

const COLUMNS = { user: "user_id", token: "token_id", model: "requested_model", channel: "channel_id", tenant: "tenant_id" } as const;

/** Every rollup row the stored usage records imply, aggregated by the database itself. */
export async function rollupsFromLogs(db: Kysely<Database>, withCost: boolean): Promise<RollupRow[]> {
  const rows: RollupRow[] = [];
  const cost = withCost ? sql`sum(cost_micro_usd)` : sql`0`;
  for (const [period, length] of [
    ["hour", 13],
    ["day", 10],
  ] as const) {
    for (const [dimension, column] of Object.entries(COLUMNS) as [RollupRow["dimension"], string][]) {
      const result = await sql<Record<string, unknown>>`
        select tenant_id, substr(created_at, 1, ${sql.lit(length)}) as bucket, ${sql.ref(column)} as value,
          count(*) as requests, sum(case when status_code >= 400 then 1 else 0 end) as errors,
          sum(prompt_tokens) as prompt_tokens, sum(completion_tokens) as completion_tokens,
          sum(cached_tokens) as cached_tokens, sum(total_tokens) as total_tokens,
          ${cost} as cost_micro_usd, sum(latency_ms) as latency_ms_sum
        from usage_logs where ${sql.ref(column)} is not null
        group by tenant_id, substr(created_at, 1, ${sql.lit(length)}), ${sql.ref(column)}`.execute(db);
      for (const row of result.rows) {
        const bucket = String(row.bucket);
        const entry = {
          tenant_id: String(row.tenant_id),
          period,
          bucket_start: period === "hour" ? `${bucket}:00:00.000Z` : `${bucket}T00:00:00.000Z`,
          dimension,
          dimension_value: String(row.value),
        } as RollupRow;
        for (const metric of ROLLUP_METRICS) entry[metric] = Number(row[metric]);
        rows.push(entry);
      }
    }
  }
  return sortRollups(rows);
}

/** The stored rollups, numbers as numbers. */
export async function storedRollups(db: Kysely<Database>): Promise<RollupRow[]> {
  const rows = await db.selectFrom("usage_rollups").selectAll().execute();
  return sortRollups(
    rows.map((row) => {
      const entry = { ...row };
      for (const metric of ROLLUP_METRICS) entry[metric] = Number(row[metric]);
      return entry;
    }),
  );
}

const keyOf = (row: RollupRow) => [row.tenant_id, row.period, row.dimension, row.dimension_value, row.bucket_start].join("|");

export function sortRollups(rows: RollupRow[]): RollupRow[] {
  return rows.sort((left, right) => (keyOf(left) < keyOf(right) ? -1 : keyOf(left) > keyOf(right) ? 1 : 0));
}
