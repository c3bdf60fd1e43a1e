import { z } from "zod";
import { ZId, ZTimestamp } from "./common.ts";

export const ZAuditLog = z.object({
  id: ZId,
  tenant_id: ZId.nullable(),
  actor_user_id: ZId.nullable(),
  actor_email: z.string().nullable(),
  action: z.string(),
  target_type: z.string(),
  target_id: z.string().nullable(),
  ip: z.string().nullable(),
  request_id: z.string().nullable(),
  before: z.unknown().nullable(),
  after: z.unknown().nullable(),
  created_at: ZTimestamp,
});
export type TAuditLog = z.infer<typeof ZAuditLog>;

export const ZAuditQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().max(200).optional(),
  action: z.string().max(100).optional(),
  actor_user_id: ZId.optional(),
  target_type: z.string().max(100).optional(),
  target_id: z.string().max(100).optional(),
  from: z.iso.datetime().optional(),
  to: z.iso.datetime().optional(),
});

export const ZPlatformAuditQuery = ZAuditQuery.extend({ tenant_id: ZId.optional() });

export const ZSettingsValues = z.record(z.string(), z.unknown());

export const ZSettingsResponse = z.object({
  values: ZSettingsValues.describe("effective values, defaults included"),
  overrides: ZSettingsValues.describe("only the values stored for this scope"),
});

export const ZHealth = z.object({ status: z.literal("ok"), uptime_seconds: z.number() });

export const ZReady = z.object({
  status: z.enum(["ready", "unavailable"]),
  checks: z.record(z.string(), z.object({ ok: z.boolean(), latency_ms: z.number(), error: z.string().optional() })),
});
