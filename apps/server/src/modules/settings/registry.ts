import { z } from "zod";

const ZTimeZone = z
  .string()
  .max(64)
  .refine((zone) => {
    try {
      new Intl.DateTimeFormat("en-US", { timeZone: zone });
      return true;
    } catch {
      return false;
    }
  }, "not an IANA time zone");

const ZLocale = z.enum(["en-US", "zh-CN"]);

/**
 * Every runtime setting, with its schema and default. A key not listed here cannot be stored.
 * Tenant settings fall back to the platform value of the same key where one exists.
 */
export const PLATFORM_SETTINGS = {
  site_name: { schema: z.string().trim().min(1).max(100), default: "Lyss" },
  default_locale: { schema: ZLocale, default: "en-US" },
  default_time_zone: { schema: ZTimeZone, default: "UTC" },
  announcement: { schema: z.string().max(2000), default: "" },
  allow_tenant_creation_by_users: { schema: z.boolean(), default: false },
  tenant_price_multipliers: {
    schema: z.record(z.string().max(64), z.number().min(0).max(1000)).describe("tenant id → price multiplier"),
    default: {} as Record<string, number>,
  },
  tenant_rate_limits: {
    schema: z
      .record(z.string().max(64), z.strictObject({ rpm: z.number().int().min(1).optional(), tpm: z.number().int().min(1).optional() }))
      .describe("tenant id → requests and tokens per minute for the whole tenant"),
    default: {} as Record<string, { rpm?: number; tpm?: number }>,
  },
  group_price_multipliers: {
    schema: z.record(z.string().max(50), z.number().min(0).max(1000)).describe("channel group → price multiplier (One-API's group ratio)"),
    default: {} as Record<string, number>,
  },
  /** Days raw usage records are kept (0: forever); hourly and daily usage rollups are kept regardless. */
  usage_retention_days: { schema: z.number().int().min(0).max(36_500), default: 90 },
} as const;

export const TENANT_SETTINGS = {
  default_locale: { schema: ZLocale, default: "en-US" },
  time_zone: { schema: ZTimeZone, default: "UTC" },
  routing_strategy: {
    schema: z.enum(["weighted_random", "round_robin", "least_connections", "best_performance", "adaptive"]),
    default: "weighted_random",
  },
  health_probe_interval_seconds: { schema: z.number().int().min(10).max(86_400), default: 300 },
  user_rate_limits: {
    schema: z
      .strictObject({ rpm: z.number().int().min(1).optional(), tpm: z.number().int().min(1).optional() })
      .describe("requests and tokens per minute for each member"),
    default: {} as { rpm?: number; tpm?: number },
  },
  quota_default_max_tokens: {
    schema: z.number().int().min(1).max(1_000_000).describe("completion tokens reserved when a request sets no max_tokens"),
    default: 4096,
  },
  routing_rules: {
    schema: z
      .array(
        z.strictObject({
          model_pattern: z.string().min(1).max(200).optional().describe("glob such as gpt-4*"),
          tag: z.string().min(1).max(100).optional().describe("matches the X-Lyss-Tag request header"),
          group: z.string().min(1).max(50).describe("the channel group to send matching requests to"),
        }),
      )
      .max(50),
    default: [] as { model_pattern?: string; tag?: string; group: string }[],
  },
  notification_webhook_url: {
    schema: z
      .union([z.literal(""), z.url({ protocol: /^https?$/ }).max(2000)])
      .describe("http(s) URL that receives signed notification events; empty: no webhook"),
    default: "",
  },
} as const;

type Registry = Record<string, { schema: z.ZodType; default: unknown }>;

/** A PATCH body for a scope: any subset of its keys; `null` resets a key to its default. */
export function patchSchema(registry: Registry) {
  const shape = Object.fromEntries(Object.entries(registry).map(([key, entry]) => [key, entry.schema.nullable().optional()]));
  return z.strictObject(shape);
}

export const ZPlatformSettingsPatch = patchSchema(PLATFORM_SETTINGS);
export const ZTenantSettingsPatch = patchSchema(TENANT_SETTINGS);
export type SettingsRegistry = Registry;
