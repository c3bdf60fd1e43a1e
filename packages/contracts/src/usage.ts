import { z } from "zod";
import { ZTimestamp } from "./common.ts";

/** Usage statistics: sums from the hourly and daily rollups, never from raw usage records. */

export const ZUsagePeriod = z.enum(["hour", "day"]).describe("hour, or UTC day");
export type TUsagePeriod = z.infer<typeof ZUsagePeriod>;

export const ZUsageDimension = z.enum(["tenant", "user", "token", "model", "channel"]);
export type TUsageDimension = z.infer<typeof ZUsageDimension>;

export const ZUsageTopDimension = z.enum(["model", "token", "user", "channel"]);
export const ZUsageTopMetric = z.enum(["requests", "total_tokens", "cost_micro_usd"]);

export const ZUsageMetrics = z.object({
  requests: z.number(),
  errors: z.number().describe("answers with status 400 or more"),
  prompt_tokens: z.number(),
  completion_tokens: z.number(),
  cached_tokens: z.number(),
  total_tokens: z.number(),
  cost_micro_usd: z.number(),
  latency_ms_sum: z.number(),
  avg_latency_ms: z.number().describe("latency_ms_sum / requests, 0 without requests"),
});
export type TUsageMetrics = z.infer<typeof ZUsageMetrics>;

const ZRangeBound = z.iso.datetime();

export const ZUsageTimeseriesQuery = z.strictObject({
  period: ZUsagePeriod.default("hour"),
  dimension: ZUsageDimension.optional().describe("default: tenant for admins, user (yourself) for members"),
  value: z
    .string()
    .min(1)
    .max(200)
    .optional()
    .describe("the user, token or channel id or the model name; required unless the dimension is tenant (members: their own id)"),
  from: ZRangeBound.optional().describe("inclusive, rounded down to the period; default: 24 hours (hour) or 30 days (day) before to"),
  to: ZRangeBound.optional().describe("exclusive; default: now"),
});
export type TUsageTimeseriesQuery = z.infer<typeof ZUsageTimeseriesQuery>;

export const ZUsageBucket = ZUsageMetrics.extend({ bucket_start: ZTimestamp });

export const ZUsageTimeseries = z.object({
  period: ZUsagePeriod,
  dimension: ZUsageDimension,
  value: z.string(),
  from: ZTimestamp,
  to: ZTimestamp,
  /** Every bucket of the range in order, zeros included. */
  buckets: z.array(ZUsageBucket),
  totals: ZUsageMetrics,
});
export type TUsageTimeseries = z.infer<typeof ZUsageTimeseries>;

export const ZUsageTopQuery = z.strictObject({
  dimension: ZUsageTopDimension.default("model").describe("members: user only (themselves)"),
  metric: ZUsageTopMetric.default("requests"),
  from: ZRangeBound.optional().describe("inclusive, rounded down to the hour; default: 30 days before to"),
  to: ZRangeBound.optional().describe("exclusive, rounded up to the hour; default: now"),
  limit: z.coerce.number().int().min(1).max(100).default(10),
});
export type TUsageTopQuery = z.infer<typeof ZUsageTopQuery>;

export const ZUsageTop = z.object({
  dimension: ZUsageTopDimension,
  metric: ZUsageTopMetric,
  from: ZTimestamp,
  to: ZTimestamp,
  data: z.array(ZUsageMetrics.extend({ value: z.string() })),
});
export type TUsageTop = z.infer<typeof ZUsageTop>;
