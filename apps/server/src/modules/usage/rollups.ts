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

/** Whether a stored time is ISO text as `toISOString` writes it (its hour is then its first 13 characters). */
const isIsoText = (time: string) => time.length === 24 && time.endsWith("Z");

/** The hour of a stored time as `YYYY-MM-DDTHH`; ISO text from `toISOString` is cut, anything else parsed. */
function hourOf(createdAt: string): string {
  return (isIsoText(createdAt) ? createdAt : new Date(createdAt).toISOString()).slice(0, 13);
}

/** Whether a record is alike in every dimension to the group's and falls in its hour (its time as `toISOString` writes it). */
const inGroup = ({ record: first, hour }: Group, record: UsageLogsTable) =>
  record.tenant_id === first.tenant_id &&
  record.user_id === first.user_id &&
  record.token_id === first.token_id &&
  record.requested_model === first.requested_model &&
  record.channel_id === first.channel_id &&
  isIsoText(record.created_at) &&
  record.created_at.startsWith(hour);

/** A batch's records that are alike in every dimension and in their hour, summed. */
interface Group extends RollupMetrics {
  record: UsageLogsTable;
  hour: string;
}

/** Sums a batch in memory: one row per (tenant, period, bucket, dimension, value), sorted by key. */
export function aggregateUsage(batch: readonly UsageLogsTable[]): RollupRow[] {
  // Records alike in every dimension and in their hour are summed first: a batch holds few such groups,
  // and each group then adds to its ten rollup rows once. (A missing user or channel keys apart from an
  // empty one.)
  const groups = new Map<string, Group>();
  const groupOf = (record: UsageLogsTable): Group => {
    const hour = hourOf(record.created_at);
    const key = `${record.tenant_id}\u0000${record.user_id ?? "\u0001"}\u0000${record.token_id ?? "\u0001"}\u0000${record.requested_model}\u0000${record.channel_id ?? "\u0001"}\u0000${hour}`;
    let found = groups.get(key);
    if (!found) {
      found = { record, hour, ...emptyMetrics() };
      groups.set(key, found);
    }
    return found;
  };
  // Consecutive records mostly fall in one group: such a record is added to the group of the one
  // before without building and hashing the key again.
  let group: Group | undefined;
  for (const record of batch) {
    if (!group || !inGroup(group, record)) group = groupOf(record);
    group.requests += 1;
    if (record.status_code >= 400) group.errors += 1;
    group.prompt_tokens += record.prompt_tokens;
    group.completion_tokens += record.completion_tokens;
    group.cached_tokens += record.cached_tokens;
    group.total_tokens += record.total_tokens;
    // Present once prices exist (migration 0003); a record without a cost counts as free.
    group.cost_micro_usd += Number((record as { cost_micro_usd?: number }).cost_micro_usd ?? 0);
    group.latency_ms_sum += record.latency_ms;
  }
  const rows = new Map<string, RollupRow>();
  for (const group of groups.values()) {
    const { record } = group;
    const buckets: Record<RollupPeriod, string> = { hour: `${group.hour}:00:00.000Z`, day: `${group.hour.slice(0, 10)}T00:00:00.000Z` };
    const values: [RollupDimension, string | null][] = [
      ["tenant", record.tenant_id],
      ["user", record.user_id],
      ["token", record.token_id],
      ["model", record.requested_model],
      ["channel", record.channel_id],
    ];
    for (const period of ROLLUP_PERIODS) {
      for (const [dimension, value] of values) {
        // Records without a value in a dimension (no channel, say) are not counted there.
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
        for (const metric of ROLLUP_METRICS) row[metric] += group[metric];
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
