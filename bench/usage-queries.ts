import { type Kysely, sql } from "kysely";
import type { Database } from "../apps/server/src/db/schema.ts";
import { DAY_MS, HOUR_MS } from "../apps/server/src/modules/usage/rollups.ts";
import type { Entities, UsageShape } from "./usage-generator.ts";

/** The questions the benchmark asks the stats API, and the same questions answered from raw usage_logs. */

export interface BenchQuery {
  name: string;
  kind: "timeseries" | "top";
  url: string;
  period?: "hour" | "day";
  dimension: "tenant" | "user" | "token" | "model" | "channel";
  value?: string;
  metric?: "requests" | "total_tokens" | "cost_micro_usd";
  limit?: number;
}

/** Per bucket or per value, the numbers both sides must agree on, in answer order. */
export type Comparable = { key: string; requests: number; errors: number; total_tokens: number; cost_micro_usd: number }[];

const COLUMN = { user: "user_id", token: "token_id", model: "requested_model", channel: "channel_id", tenant: "tenant_id" } as const;

export function queriesOf(shape: UsageShape, entities: Entities): BenchQuery[] {
  const iso = (ms: number) => new Date(ms).toISOString();
  const end = shape.end;
  const start = end - shape.days * DAY_MS;
  const span = (from: number, to: number) => `from=${iso(from)}&to=${iso(to)}`;
  const model = entities.models[0] ?? "";
  const user = entities.users[0] ?? "";
  const last = (days: number) => Math.max(start, end - days * DAY_MS);
  const timeseries = (
    name: string,
    period: "hour" | "day",
    dimension: BenchQuery["dimension"],
    value: string | undefined,
    from: number,
  ): BenchQuery => ({
    name,
    kind: "timeseries",
    url: `/api/v1/usage/timeseries?period=${period}&dimension=${dimension}${value ? `&value=${encodeURIComponent(value)}` : ""}&${span(from, end)}`,
    period,
    dimension,
    ...(value ? { value } : {}),
  });
  const top = (
    name: string,
    dimension: BenchQuery["dimension"],
    metric: NonNullable<BenchQuery["metric"]>,
    from: number,
    to: number,
  ): BenchQuery => ({
    name,
    kind: "top",
    url: `/api/v1/usage/top?dimension=${dimension}&metric=${metric}&limit=10&${span(from, to)}`,
    dimension,
    metric,
    limit: 10,
  });
  return [
    timeseries("timeseries hour, tenant, 7 days", "hour", "tenant", undefined, last(7)),
    timeseries(`timeseries day, tenant, ${shape.days} days`, "day", "tenant", undefined, start),
    timeseries(`timeseries day, model, ${shape.days} days`, "day", "model", model, start),
    timeseries("timeseries hour, user, 30 days", "hour", "user", user, last(30)),
    top(`top models by requests, ${shape.days} days`, "model", "requests", start, end),
    top("top tokens by total_tokens, 30 days unaligned", "token", "total_tokens", last(30) + 5.5 * HOUR_MS, end - 2.25 * HOUR_MS),
    top(`top users by cost, ${shape.days} days`, "user", "cost_micro_usd", start, end),
    top("top channels by requests, 24 hours", "channel", "requests", last(1), end),
  ];
}

const hasCost = new WeakMap<object, Promise<boolean>>();

function costColumn(db: Kysely<Database>) {
  let known = hasCost.get(db);
  if (!known) {
    known = db.introspection
      .getTables()
      .then((tables) =>
        tables.some((table) => table.name === "usage_logs" && table.columns.some((column) => column.name === "cost_micro_usd")),
      );
    hasCost.set(db, known);
  }
  return known;
}

interface Answer {
  from: string;
  to: string;
  buckets?: { bucket_start: string; requests: number; errors: number; total_tokens: number; cost_micro_usd: number }[];
  data?: { value: string; requests: number; errors: number; total_tokens: number; cost_micro_usd: number }[];
}

/** The same question answered by aggregating raw usage_logs over the range the API answered for. */
export async function baselineOf(db: Kysely<Database>, tenantId: string, query: BenchQuery, answer: Answer): Promise<Comparable> {
  const cost = (await costColumn(db)) ? sql`sum(cost_micro_usd)` : sql`0`;
  const sums = sql`count(*) as requests, sum(case when status_code >= 400 then 1 else 0 end) as errors,
    sum(total_tokens) as total_tokens, ${cost} as cost_micro_usd`;
  const range = sql`tenant_id = ${tenantId} and created_at >= ${answer.from} and created_at < ${answer.to}`;
  const column = sql.ref(COLUMN[query.dimension]);
  let rows: Record<string, unknown>[];
  if (query.kind === "timeseries") {
    const bucket = sql`substr(created_at, 1, ${sql.lit(query.period === "hour" ? 13 : 10)})`;
    const value = query.dimension === "tenant" ? sql`` : sql`and ${column} = ${query.value}`;
    const result = await sql<Record<string, unknown>>`select ${bucket} as key, ${sums} from usage_logs
      where ${range} ${value} group by ${bucket} order by ${bucket}`.execute(db);
    rows = result.rows;
  } else {
    const order = query.metric === "requests" ? sql`count(*)` : query.metric === "total_tokens" ? sql`sum(total_tokens)` : cost;
    const result = await sql<Record<string, unknown>>`select ${column} as key, ${sums} from usage_logs
      where ${range} and ${column} is not null group by ${column} order by ${order} desc, ${column} limit ${query.limit ?? 10}`.execute(db);
    rows = result.rows;
  }
  return rows.map((row) => ({
    key: String(row.key),
    requests: Number(row.requests),
    errors: Number(row.errors),
    total_tokens: Number(row.total_tokens),
    cost_micro_usd: Number(row.cost_micro_usd),
  }));
}

/** The API's answer in the baseline's shape: non-empty buckets keyed like `substr(created_at, …)`, or the ranking. */
export function fromAnswer(query: BenchQuery, answer: Answer): Comparable {
  const pick = (key: string, row: Omit<Comparable[number], "key">) => ({
    key,
    requests: row.requests,
    errors: row.errors,
    total_tokens: row.total_tokens,
    cost_micro_usd: row.cost_micro_usd,
  });
  if (query.kind === "top") return (answer.data ?? []).map((row) => pick(row.value, row));
  const length = query.period === "hour" ? 13 : 10;
  return (answer.buckets ?? []).filter((bucket) => bucket.requests > 0).map((bucket) => pick(bucket.bucket_start.slice(0, length), bucket));
}

export const compare = (left: Comparable, right: Comparable) => JSON.stringify(left) === JSON.stringify(right);
