import { z } from "zod";
import { ZId, ZTimestamp } from "./common.ts";
import { ZLimit, ZLimitStatus } from "./limits.ts";

export const ZChannelStatus = z.enum(["enabled", "disabled", "auto_disabled"]);

const ZModelName = z.string().trim().min(1).max(200);
const ZHeaderName = z.string().regex(/^[A-Za-z0-9-]{1,100}$/, "a header name");

type WithoutDefaults<T extends z.core.$ZodShape> = { [K in keyof T]: T[K] extends z.ZodDefault<infer Inner> ? Inner : T[K] };

/**
 * A create schema's fields without their defaults, for PATCH bodies: Zod applies a default even inside
 * `.partial()`, which would reset every field a PATCH leaves out.
 */
function withoutDefaults<T extends z.core.$ZodShape>(schema: z.ZodObject<T>) {
  const shape = Object.fromEntries(
    Object.entries(schema.shape).map(([name, field]) => {
      if (!(field instanceof z.ZodDefault)) return [name, field];
      const inner = field.unwrap() as z.ZodType;
      return [name, field.description ? inner.describe(field.description) : inner];
    }),
  );
  return z.strictObject(shape as WithoutDefaults<T>);
}

export const ZChannelInput = z.strictObject({
  name: z.string().trim().min(1).max(100),
  provider: z.string().min(1).max(50),
  base_url: z
    .url({ protocol: /^https?$/ })
    .max(500)
    .optional()
    .describe("the upstream's origin; a trailing /v1 is accepted too"),
  credentials: z.record(z.string().max(100), z.union([z.string().max(10_000), z.number()])).default({}),
  models: z.array(ZModelName).max(1000).default([]),
  model_mapping: z.record(ZModelName, ZModelName).default({}).describe("public model name → upstream model name"),
  priority: z.number().int().min(-1000).max(1000).default(0).describe("higher tiers are tried first"),
  weight: z.number().int().min(0).max(10_000).default(1),
  group: z.string().trim().min(1).max(50).default("default"),
  status: z.enum(["enabled", "disabled"]).default("enabled"),
  timeout_ms: z.number().int().min(1000).max(600_000).default(120_000).describe("whole-request timeout"),
  first_byte_timeout_ms: z.number().int().min(500).max(600_000).default(60_000).describe("time allowed until response headers"),
  extra_headers: z.record(ZHeaderName, z.string().max(2000)).default({}),
  limits: z.array(ZLimit).max(20).default([]).describe("quota limits of this channel, checked at admission, charged on use"),
});

export const ZChannelUpdate = withoutDefaults(ZChannelInput.omit({ provider: true }))
  .partial()
  .extend({
    status: ZChannelStatus.optional(),
  });

export const ZChannel = z.object({
  id: ZId,
  name: z.string(),
  provider: z.string(),
  base_url: z.string(),
  credentials: z.record(z.string(), z.string()).describe("masked values only"),
  models: z.array(z.string()),
  model_mapping: z.record(z.string(), z.string()),
  priority: z.number(),
  weight: z.number(),
  group: z.string(),
  status: ZChannelStatus,
  status_reason: z.string().nullable(),
  timeout_ms: z.number(),
  first_byte_timeout_ms: z.number(),
  extra_headers: z.record(z.string(), z.string()),
  limits: z.array(ZLimitStatus),
  created_at: ZTimestamp,
  updated_at: ZTimestamp,
});
export type TChannel = z.infer<typeof ZChannel>;

export const ZChannelTestResult = z.object({
  ok: z.boolean(),
  latency_ms: z.number(),
  model: z.string().nullable(),
  status: z.number().nullable().describe("the upstream's HTTP status"),
  error: z.string().nullable(),
});

export const ZChannelSyncResult = z.object({ models: z.array(z.string()), channel: ZChannel });

export const ZCircuitState = z.enum(["closed", "open", "half_open"]);

const ZPercentiles = z.object({
  samples: z.number().describe("samples in the last five minutes (at most the last 512)"),
  p50: z.number().nullable(),
  p90: z.number().nullable(),
  p99: z.number().nullable(),
});

/** A channel's live statistics, as this instance has seen them. */
export const ZChannelStats = z.object({
  channel_id: ZId,
  status: ZChannelStatus,
  status_reason: z.string().nullable(),
  circuit: z.object({
    state: ZCircuitState,
    consecutive_failures: z.number(),
    opened_at: ZTimestamp.nullable(),
    cooldown_ms: z.number().describe("how long an open circuit waits before a trial request; doubles after a failed trial"),
    retry_at: ZTimestamp.nullable().describe("when an open circuit lets a trial request through"),
  }),
  in_flight: z.number(),
  requests: z.number(),
  failures: z.number(),
  success_rate: z.number().describe("decaying average, 0 to 1"),
  window: z.object({
    seconds: z.number(),
    requests: z.number(),
    failures: z.number(),
    error_rate: z.number().nullable(),
  }),
  latency_ms: ZPercentiles.extend({
    average: z.number().describe("exponentially weighted"),
    peak: z.number().describe("peak-EWMA, as the adaptive strategy uses it"),
  }),
  ttft_ms: ZPercentiles.describe("time to first token of streamed answers"),
  credentials_failing: z.boolean(),
  cooling_down: z.boolean().describe("the upstream asked to wait (Retry-After)"),
  last_error: z.string().nullable(),
  last_probe: z
    .object({
      at: ZTimestamp,
      ok: z.boolean(),
      latency_ms: z.number(),
      status: z.number().nullable(),
      error: z.string().nullable(),
    })
    .nullable(),
});
export type TChannelStats = z.infer<typeof ZChannelStats>;

export const ZRateLimits = z.strictObject({
  rpm: z.number().int().min(1).optional(),
  tpm: z.number().int().min(1).optional(),
});

const ZCidr = z
  .string()
  .max(64)
  .regex(/^[0-9a-fA-F:.]+(\/\d{1,3})?$/, "an IP address or CIDR range");

export const ZTokenInput = z.strictObject({
  name: z.string().trim().min(1).max(100),
  expires_at: z.iso.datetime().nullable().default(null),
  models: z.array(ZModelName).max(1000).nullable().default(null).describe("allowed public model names; null allows all"),
  channel_groups: z.array(z.string().min(1).max(50)).max(100).nullable().default(null).describe("allowed channel groups; null allows all"),
  ip_allowlist: z.array(ZCidr).max(100).default([]),
  status: z.enum(["enabled", "disabled"]).default("enabled"),
  allow_dry_run: z.boolean().default(false),
  limits: z.array(ZLimit).max(20).default([]),
  rate_limits: ZRateLimits.default({}),
  user_id: ZId.optional().describe("owner; admins may create tokens for other members"),
});

export const ZTokenUpdate = withoutDefaults(ZTokenInput.omit({ user_id: true })).partial();

export const ZToken = z.object({
  id: ZId,
  name: z.string(),
  user_id: ZId,
  key_prefix: z.string().describe("the first characters of the key, for recognising it"),
  expires_at: ZTimestamp.nullable(),
  models: z.array(z.string()).nullable(),
  channel_groups: z.array(z.string()).nullable(),
  ip_allowlist: z.array(z.string()),
  status: z.enum(["enabled", "disabled"]),
  allow_dry_run: z.boolean(),
  limits: z.array(ZLimitStatus),
  rate_limits: ZRateLimits,
  last_used_at: ZTimestamp.nullable(),
  created_at: ZTimestamp,
  updated_at: ZTimestamp,
});
export type TToken = z.infer<typeof ZToken>;

export const ZCreatedToken = ZToken.extend({ key: z.string().describe("the secret key, shown only in this answer") });

export const ZUsageLog = z.object({
  id: ZId,
  tenant_id: ZId,
  user_id: ZId.nullable(),
  token_id: ZId.nullable(),
  channel_id: ZId.nullable(),
  provider: z.string().nullable(),
  endpoint: z.string(),
  requested_model: z.string(),
  upstream_model: z.string().nullable(),
  stream: z.boolean(),
  status_code: z.number(),
  error: z.string().nullable(),
  latency_ms: z.number(),
  ttft_ms: z.number().nullable(),
  prompt_tokens: z.number(),
  completion_tokens: z.number(),
  cached_tokens: z.number(),
  reasoning_tokens: z.number(),
  total_tokens: z.number(),
  cost_micro_usd: z.number(),
  attempts: z.number(),
  request_id: z.string().nullable(),
  created_at: ZTimestamp,
});

export const ZUsageQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().max(200).optional(),
  model: z.string().max(200).optional(),
  token_id: ZId.optional(),
  channel_id: ZId.optional(),
  user_id: ZId.optional(),
  status: z.enum(["success", "error"]).optional(),
  from: z.iso.datetime().optional(),
  to: z.iso.datetime().optional(),
});

export const ZProvider = z.object({
  id: z.string(),
  names: z.object({ en: z.string(), "zh-CN": z.string() }),
  default_base_url: z.string(),
  capabilities: z.record(z.string(), z.boolean()),
  credential_schema: z.array(
    z.object({
      name: z.string(),
      type: z.enum(["secret", "text", "select", "number"]),
      required: z.boolean(),
      default: z.union([z.string(), z.number()]).nullable(),
      placeholder: z.string().nullable(),
      options: z.array(z.object({ value: z.string(), label: z.object({ en: z.string(), "zh-CN": z.string() }) })).nullable(),
      label: z.object({ en: z.string(), "zh-CN": z.string() }),
      help: z.object({ en: z.string(), "zh-CN": z.string() }).nullable(),
    }),
  ),
});
