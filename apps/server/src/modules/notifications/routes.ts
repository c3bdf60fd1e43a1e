import {
  ZNotification,
  ZNotificationPage,
  ZNotificationQuery,
  ZNotificationReadAll,
  ZNotificationWebhook,
  ZWebhookDelivery,
} from "@lyss/contracts";
import { z } from "zod";
import { requirePrincipal, requireTenant } from "../auth/guard.ts";
import { type Api, AUTHED_ERRORS, ZIdParams } from "../http.ts";
import type { NotificationService } from "./service.ts";

const tags = ["notifications"];
const member = { access: { tenant: "member" as const } };
const admin = { access: { tenant: "admin" as const } };

/** The caller's notifications in the active tenant, and the tenant's webhook for its administrators. */
export function notificationRoutes(app: Api, notifications: NotificationService) {
  app.get(
    "/api/v1/notifications",
    {
      config: member,
      schema: {
        tags,
        summary: "Your notifications in the active tenant, newest first",
        querystring: ZNotificationQuery,
        response: { 200: ZNotificationPage, ...AUTHED_ERRORS },
      },
    },
    async (request) =>
      notifications.list(requireTenant(request).tenant.id, requirePrincipal(request).user.id, {
        limit: request.query.limit,
        cursor: request.query.cursor,
        unread: request.query.unread === "true",
      }),
  );

  app.post(
    "/api/v1/notifications/:id/read",
    {
      config: member,
      schema: {
        tags,
        summary: "Mark one of your notifications read",
        params: ZIdParams,
        body: z.strictObject({}).nullish(),
        response: { 200: ZNotification, ...AUTHED_ERRORS },
      },
    },
    async (request) => notifications.read(requireTenant(request).tenant.id, requirePrincipal(request).user.id, request.params.id),
  );

  app.post(
    "/api/v1/notifications/read-all",
    {
      config: member,
      schema: {
        tags,
        summary: "Mark all your notifications in the active tenant read",
        body: z.strictObject({}).nullish(),
        response: { 200: ZNotificationReadAll, ...AUTHED_ERRORS },
      },
    },
    async (request) => notifications.readAll(requireTenant(request).tenant.id, requirePrincipal(request).user.id),
  );

  app.get(
    "/api/v1/notifications/webhook",
    {
      config: admin,
      schema: {
        tags,
        summary: "The tenant's notification webhook: its URL and the secret its signatures verify with",
        description:
          'Each event is POSTed as JSON with X-Lyss-Timestamp and X-Lyss-Signature: sha256=<hex HMAC-SHA256, keyed with the secret as text, of "<timestamp>.<raw body>">. Set the URL with the tenant setting notification_webhook_url.',
        response: { 200: ZNotificationWebhook, ...AUTHED_ERRORS },
      },
    },
    async (request) => notifications.webhook(requireTenant(request).tenant.id),
  );

  app.post(
    "/api/v1/notifications/webhook/test",
    {
      config: admin,
      schema: {
        tags,
        summary: "Send a signed test event to the webhook once and answer how the receiver took it",
        body: z.strictObject({}).nullish(),
        response: { 200: ZWebhookDelivery, ...AUTHED_ERRORS },
      },
    },
    async (request) => notifications.testWebhook(requireTenant(request).tenant.id),
  );
}
