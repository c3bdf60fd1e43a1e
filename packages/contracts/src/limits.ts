import { z } from "zod";

/** One quota limit: at most `max` of a metric per window (calendar windows in the tenant's time zone). */
export const ZLimit = z.strictObject({
  metric: z.enum(["requests", "tokens", "cost_micro_usd"]),
  window: z.enum(["total", "day", "month"]),
  max: z.number().int().min(0),
});

export const ZLimitStatus = ZLimit.extend({
  used: z.number().describe("settled use in the current window"),
  reserved: z.number().describe("admitted by requests still running"),
  resets_at: z.string().nullable().describe("when the window starts again (null for total)"),
});
