import type { TUsageMetrics, TUsageTimeseries, TUsageTop } from "@lyss/contracts";
import type { Kysely, SelectQueryBuilder } from "kysely";
import type { Database } from "../../db/schema.ts";
import { AppError } from "../../errors/app-error.ts";
import {
  bucketStart,
  DAY_MS,
  emptyMetrics,
  HOUR_MS,
  ROLLUP_METRICS,
  type RollupDimension,
  type RollupMetric,
  type RollupMetrics,
  type RollupPeriod,
} from "./rollups.ts";

/** The longest range one answer may cover: about three months of hours, ten years of days. */
export const MAX_BUCKETS: Record<RollupPeriod, number> = { hour: 93 * 24, day: 3660 };
const SIZE: Record<RollupPeriod, number> = { hour: HOUR_MS, day: DAY_MS };

export interface TimeseriesRequest {
  period: RollupPeriod;
  dimension: RollupDimension;
  value: string;
  from: Date;
  to: Date;
}

export interface TopRequest {
  dimension: Exclude<RollupDimension, "tenant">;
  metric: "requests" | "total_tokens" | "cost_micro_usd";
  from: Date;
  to: Date;
  limit: number;
  /** Only this value may appear (a member's own user id). */
  onlyValue?: string | undefined;
}

type SumRow = Record<RollupMetric, number | string | bigint | null>;

/** Sums arrive as numbers (SQLite), or as numeric text (PostgreSQL's sum of bigint). */
export function toMetrics(row: SumRow): TUsageMetrics {
  const metrics = emptyMetrics();
  for (const metric of ROLLUP_METRICS) metrics[metric] = Number(row[metric] ?? 0);
  return withAverage(metrics);
}

function withAverage(metrics: RollupMetrics): TUsageMetrics {
  return { ...metrics, avg_latency_ms: metrics.requests > 0 ? Math.round(metrics.latency_ms_sum / metrics.requests) : 0 };
}

function assertRange(from: number, to: number, period: RollupPeriod) {
  if (!(from < to)) throw new AppError("bad_request", "from must be before to");
  if ((to - from) / SIZE[period] > MAX_BUCKETS[period]) {
    throw new AppError("bad_request", `the range may span at most ${MAX_BUCKETS[period]} ${period}s`);
  }
}

/** Buckets of one value over a range, every bucket present (zeros where nothing happened). */
export async function usageTimeseries(db: Kysely<Database>, tenantId: string, request: TimeseriesRequest): Promise<TUsageTimeseries> {
  const { period, dimension, value } = request;
  const size = SIZE[period];
  const start = Date.parse(bucketStart(period, request.from));
  const end = Math.ceil(request.to.getTime() / size) * size;
  assertRange(start, end, period);
  const rows = await db
    .selectFrom("usage_rollups")
    .select(["bucket_start", ...ROLLUP_METRICS])
    .where("tenant_id", "=", tenantId)
    .where("period", "=", period)
    .where("dimension", "=", dimension)
    .where("dimension_value", "=", value)
    .where("bucket_start", ">=", new Date(start).toISOString())
    .where("bucket_start", "<", new Date(end).toISOString())
    .orderBy("bucket_start")
    .execute();
  const stored = new Map(rows.map((row) => [row.bucket_start, toMetrics(row)]));
  const totals = emptyMetrics();
  const buckets: TUsageTimeseries["buckets"] = [];
  for (let time = start; time < end; time += size) {
    const bucket = new Date(time).toISOString();
    const metrics = stored.get(bucket) ?? withAverage(emptyMetrics());
    for (const metric of ROLLUP_METRICS) totals[metric] += metrics[metric];
    buckets.push({ bucket_start: bucket, ...metrics });
  }
  return {
    period,
    dimension,
    value,
    from: new Date(start).toISOString(),
    to: new Date(end).toISOString(),
    buckets,
    totals: withAverage(totals),
  };
}

interface Span {
  period: RollupPeriod;
  start: number;
  end: number;
}

/**
 * The fewest rollups that cover [from, to) to the hour: whole UTC days from the daily rollups, the
 * hours before the first and after the last whole day from the hourly ones.
 */
export function coveringSpans(from: number, to: number): Span[] {
  const firstDay = Math.ceil(from / DAY_MS) * DAY_MS;
  const lastDay = Math.floor(to / DAY_MS) * DAY_MS;
  if (firstDay >= lastDay) return [{ period: "hour", start: from, end: to }];
  const spans: Span[] = [{ period: "day", start: firstDay, end: lastDay }];
  if (from < firstDay) spans.unshift({ period: "hour", start: from, end: firstDay });
  if (lastDay < to) spans.push({ period: "hour", start: lastDay, end: to });
  return spans;
}

/** The values with the highest sum of a metric over a range (ties by value), with all their metrics. */
export async function usageTop(db: Kysely<Database>, tenantId: string, request: TopRequest): Promise<TUsageTop> {
  const from = Math.floor(request.from.getTime() / HOUR_MS) * HOUR_MS;
  const to = Math.ceil(request.to.getTime() / HOUR_MS) * HOUR_MS;
  assertRange(from, to, "day");
  const branch = (span: Span) => {
    let query = db
      .selectFrom("usage_rollups")
      .select(["dimension_value", ...ROLLUP_METRICS])
      .where("tenant_id", "=", tenantId)
      .where("period", "=", span.period)
      .where("dimension", "=", request.dimension)
      .where("bucket_start", ">=", new Date(span.start).toISOString())
      .where("bucket_start", "<", new Date(span.end).toISOString());
    if (request.onlyValue !== undefined) query = query.where("dimension_value", "=", request.onlyValue);
    return query;
  };
  // Each branch is one range scan of the (tenant, period, dimension, bucket) index.
  const [first, ...rest] = coveringSpans(from, to).map(branch);
  if (!first) throw new AppError("bad_request", "empty range");
  let union: SelectQueryBuilder<Database, "usage_rollups", { dimension_value: string } & Record<RollupMetric, number>> = first;
  for (const next of rest) union = union.unionAll(next);
  const rows = await db
    .selectFrom(union.as("spans"))
    .select((eb) => ["dimension_value", ...ROLLUP_METRICS.map((metric) => eb.fn.sum<number | string>(metric).as(metric))])
    .groupBy("dimension_value")
    .orderBy((eb) => eb.fn.sum(request.metric), "desc")
    .orderBy("dimension_value")
    .limit(request.limit)
    .execute();
  return {
    dimension: request.dimension,
    metric: request.metric,
    from: new Date(from).toISOString(),
    to: new Date(to).toISOString(),
    data: rows.map((row) => ({ value: row.dimension_value, ...toMetrics(row) })),
  };
}
