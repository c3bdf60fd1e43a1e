import { type Kysely, sql } from "kysely";
import { compiledBatch } from "../../db/compiled-batch.ts";
import type { Database, UsageLogsTable, UsageRollupsTable } from "../../db/schema.ts";

export type RollupPeriod = UsageRollupsTable["period"];
export type RollupDimension = UsageRollupsTable["dimension"];
export type RollupRow = UsageRollupsTable;

export const ROLLUP_PERIODS: readonly RollupPeriod[] = ["hour", "day"];
export const ROLLUP_DIMENSIONS: readonly RollupDimension[] = ["tenant", "user", "token", "model", "channel"];
export const ROLLUP_METRICS = [
  "requests",
  "errors",
  "prompt_tokens",
  "completion_tokens",
  "cached_tokens",
  "total_tokens",
  "cost_micro_usd",
  "latency_ms_sum",
] as const;
export type RollupMetric = (typeof ROLLUP_METRICS)[number];
export type RollupMetrics = Record<RollupMetric, number>;

const KEY_COLUMNS = ["tenant_id", "period", "dimension", "dimension_value", "bucket_start"] as const;
/** Rows per upsert statement: 13 parameters each stays far below both databases' limits. */
const CHUNK = 200;

export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;

export const emptyMetrics = (): RollupMetrics => ({
  requests: 0,
  errors: 0,
  prompt_tokens: 0,
  completion_tokens: 0,
  cached_tokens: 0,
  total_tokens: 0,
  cost_micro_usd: 0,
  latency_ms_sum: 0,
});

/** The start of the hour or of the UTC day that contains `time`, as ISO text. */
export function bucketStart(period: RollupPeriod, time: Date | number): string {
  const ms = typeof time === "number" ? time : time.getTime();
  const size = period === "hour" ? HOUR_MS : DAY_MS;
  return new Date(Math.floor(ms / size) * size).toISOString();
}

/** Both bucket starts of a stored time; ISO text from `toISOString` is cut, anything else parsed. */
function bucketsOf(createdAt: string): Record<RollupPeriod, string> {
  const iso = createdAt.length === 24 && createdAt.endsWith("Z") ? createdAt : new Date(createdAt).toISOString();
  return { hour: `${iso.slice(0, 13)}:00:00.000Z`, day: `${iso.slice(0, 10)}T00:00:00.000Z` };
}

/** The value a record has in each dimension; records without one (no channel, say) are not counted there. */
export function dimensionValues(row: UsageLogsTable): [RollupDimension, string | null][] {
  return [
    ["tenant", row.tenant_id],
    ["user", row.user_id],
    ["token", row.token_id],
    ["model", row.requested_model],
    ["channel", row.channel_id],
  ];
}

/** What one record adds to every rollup it belongs to. Errors are answers with status 400 and up. */
export function metricsOf(row: UsageLogsTable): RollupMetrics {
  return {
    requests: 1,
    errors: row.status_code >= 400 ? 1 : 0,
    prompt_tokens: row.prompt_tokens,
    completion_tokens: row.completion_tokens,
    cached_tokens: row.cached_tokens,
    total_tokens: row.total_tokens,
    // Present once prices exist (migration 0003); a record without a cost counts as free.
    cost_micro_usd: Number((row as { cost_micro_usd?: number }).cost_micro_usd ?? 0),
    latency_ms_sum: row.latency_ms,
  };
}

/** Sums a batch in memory: one row per (tenant, period, bucket, dimension, value), sorted by key. */
export function aggregateUsage(batch: readonly UsageLogsTable[]): RollupRow[] {
  // Records alike in every dimension and in their hour are summed first: a batch holds few such groups,
  // and each group then adds to its ten rollup rows once.
  const groups = new Map<string, { record: UsageLogsTable; buckets: Record<RollupPeriod, string>; metrics: RollupMetrics }>();
  for (const record of batch) {
    const buckets = bucketsOf(record.created_at);
    const metrics = metricsOf(record);
    const key = dimensionValues(record)
      .map(([, value]) => value ?? "\u0001")
      .concat(record.tenant_id, buckets.hour)
      .join("\u0000");
    const group = groups.get(key);
    if (group) for (const metric of ROLLUP_METRICS) group.metrics[metric] += metrics[metric];
    else groups.set(key, { record, buckets, metrics });
  }
  const rows = new Map<string, RollupRow>();
  for (const { record, buckets, metrics } of groups.values()) {
    for (const period of ROLLUP_PERIODS) {
      for (const [dimension, value] of dimensionValues(record)) {
        if (value === null || value === "") continue;
        const key = `${record.tenant_id}\u0000${period}\u0000${dimension}\u0000${value}\u0000${buckets[period]}`;
        let row = rows.get(key);
        if (!row) {
          row = {
            tenant_id: record.tenant_id,
            period,
            dimension,
            dimension_value: value,
            bucket_start: buckets[period],
            ...emptyMetrics(),
          };
          rows.set(key, row);
        }
        for (const metric of ROLLUP_METRICS) row[metric] += metrics[metric];
      }
    }
  }
  // One order for every writer: concurrent instances then lock the same rows in the same order (no deadlock).
  return [...rows.entries()].sort(([left], [right]) => (left < right ? -1 : left > right ? 1 : 0)).map(([, row]) => row);
}

const increments = Object.fromEntries(
  ROLLUP_METRICS.map((metric) => [metric, sql<number>`${sql.ref(`usage_rollups.${metric}`)} + ${sql.ref(`excluded.${metric}`)}`]),
) as Record<RollupMetric, ReturnType<typeof sql<number>>>;

/** Adds rows to the stored rollups: inserted when new, otherwise each metric incremented. */
export const upsertRollups = compiledBatch<RollupRow>([...KEY_COLUMNS, ...ROLLUP_METRICS], CHUNK, (db, rows) =>
  db
    .insertInto("usage_rollups")
    .values(rows as never)
    .onConflict((conflict) => conflict.columns([...KEY_COLUMNS]).doUpdateSet(increments)),
);

/**
 * The usage recorder's batch writer: keeps hourly and daily rollups per tenant, user, token, model and
 * channel in the same transaction as the records, so rollups and records never disagree.
 * Daily buckets are UTC days.
 */
export async function writeUsageRollups(trx: Kysely<Database>, batch: UsageLogsTable[]): Promise<void> {
  if (batch.length === 0) return;
  await upsertRollups(trx, aggregateUsage(batch));
}
