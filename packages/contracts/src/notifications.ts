import { z } from "zod";
import { ZId, ZPage, ZTimestamp } from "./common.ts";

export const ZNotificationKind = z.enum(["quota.threshold", "channel.auto_disabled", "channel.enabled"]);
export type TNotificationKind = z.infer<typeof ZNotificationKind>;

export const ZNotification = z.object({
  id: ZId,
  kind: ZNotificationKind,
  title: z.string(),
  message: z.string(),
  data: z.record(z.string(), z.unknown()),
  created_at: ZTimestamp,
  read_at: ZTimestamp.nullable().describe("when the caller read it; null while unread"),
});
export type TNotification = z.infer<typeof ZNotification>;

export const ZNotificationQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().max(200).optional(),
  unread: z.enum(["true", "false"]).optional().describe("true: only unread notifications"),
});

export const ZNotificationPage = ZPage(ZNotification).extend({
  unread_count: z.number().int().describe("the caller's unread notifications in the tenant"),
});

export const ZNotificationReadAll = z.object({ updated: z.number().int().describe("notifications marked read") });

/** The webhook settings an administrator sees: the URL (tenant setting) and the signing secret. */
export const ZNotificationWebhook = z.object({
  url: z.string().nullable().describe("the tenant setting notification_webhook_url; null when none is set"),
  secret: z.string().describe("HMAC-SHA256 key (as text) of the X-Lyss-Signature header; derived, never stored"),
});

/** The outcome of sending one signed event to the webhook. */
export const ZWebhookDelivery = z.object({
  delivered: z.boolean(),
  url: z.string().nullable(),
  attempts: z.number().int(),
  status: z.number().int().nullable().describe("the receiver's HTTP status"),
  error: z.string().nullable(),
});
export type TWebhookDelivery = z.infer<typeof ZWebhookDelivery>;

/** The JSON body POSTed to the webhook; `X-Lyss-Signature: sha256=<hex HMAC of "<X-Lyss-Timestamp>.<body>">`. */
export const ZWebhookEvent = z.object({
  id: ZId,
  kind: z.string(),
  tenant_id: ZId,
  title: z.string(),
  message: z.string(),
  data: z.record(z.string(), z.unknown()),
  created_at: ZTimestamp,
});
export type TWebhookEvent = z.infer<typeof ZWebhookEvent>;
