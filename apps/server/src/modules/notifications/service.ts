import type { TNotification, TNotificationKind, TWebhookDelivery, TWebhookEvent } from "@lyss/contracts";
import type { Kysely } from "kysely";
import type { Logger } from "pino";
import type { Database, NotificationsTable } from "../../db/schema.ts";
import { notFound } from "../../errors/app-error.ts";
import type { Clock } from "../../infra/clock.ts";
import { newId } from "../../infra/ids.ts";
import { roleAtLeast } from "../auth/guard.ts";
import { listMembers } from "../members/repository.ts";
import {
  countUnread,
  findNotification,
  insertNotification,
  listNotifications,
  markRead,
  type RecipientNotificationRow,
} from "./repository.ts";
import type { WebhookSender } from "./webhook.ts";

export interface NotifyInput {
  kind: TNotificationKind;
  title: string;
  message: string;
  data: Record<string, unknown>;
  /** Who receives it (members of the tenant only); null or absent: the tenant's owners and admins. */
  userIds?: string[] | null;
  /** The same key in the same tenant stores one notification, however often (and by however many instances) it is sent. */
  dedupeKey: string;
}

const TITLE_LIMIT = 200;
const MESSAGE_LIMIT = 2000;

function toView(row: RecipientNotificationRow): TNotification {
  return {
    id: row.id,
    kind: row.kind as TNotificationKind,
    title: row.title,
    message: row.message,
    data: JSON.parse(row.data) as Record<string, unknown>,
    created_at: row.created_at,
    read_at: row.read_at,
  };
}

function eventOf(row: NotificationsTable): TWebhookEvent {
  return {
    id: row.id,
    kind: row.kind,
    tenant_id: row.tenant_id,
    title: row.title,
    message: row.message,
    data: JSON.parse(row.data) as Record<string, unknown>,
    created_at: row.created_at,
  };
}

/**
 * In-app notifications of a tenant's users, and the tenant's signed webhook. `notify` stores a
 * notification once per dedupe key (a unique column, so concurrent instances store one) and hands it to
 * the webhook in the background.
 */
export function createNotificationService(deps: { db: Kysely<Database>; clock: Clock; logger: Logger; webhooks: WebhookSender }) {
  const { db, clock, logger, webhooks } = deps;
  const pending = new Set<Promise<unknown>>();

  /** The tenant's owners and admins. */
  async function admins(tenantId: string): Promise<string[]> {
    return (await listMembers(db, tenantId)).filter((member) => roleAtLeast(member.role, "admin")).map((member) => member.user_id);
  }

  async function recipients(tenantId: string, userIds: string[] | null | undefined): Promise<string[]> {
    const members = await listMembers(db, tenantId);
    if (!userIds) return members.filter((member) => roleAtLeast(member.role, "admin")).map((member) => member.user_id);
    const inTenant = new Set(members.map((member) => member.user_id));
    return [...new Set(userIds)].filter((id) => inTenant.has(id));
  }

  return {
    admins,

    /** Stores the notification (unless its dedupe key was seen) and sends it to the webhook; null when it was a duplicate. */
    async notify(tenantId: string, input: NotifyInput): Promise<TNotification | null> {
      const row: NotificationsTable = {
        id: newId(),
        tenant_id: tenantId,
        kind: input.kind,
        title: input.title.slice(0, TITLE_LIMIT),
        message: input.message.slice(0, MESSAGE_LIMIT),
        data: JSON.stringify(input.data),
        dedupe_key: input.dedupeKey,
        created_at: clock.now().toISOString(),
      };
      const stored = await insertNotification(db, row, await recipients(tenantId, input.userIds));
      if (!stored) return null;
      webhooks.enqueue(eventOf(row));
      return toView({ ...row, read_at: null });
    },

    /** Runs background work (an event listener's notify) so that `close` waits for it; errors are logged. */
    track(work: Promise<unknown>): void {
      const tracked = work
        .catch((error: Error) => logger.error({ err: error }, "notification failed"))
        .finally(() => pending.delete(tracked));
      pending.add(tracked);
    },

    async list(tenantId: string, userId: string, query: { limit: number; cursor?: string | undefined; unread?: boolean }) {
      const rows = await listNotifications(db, tenantId, userId, {
        unread: query.unread ?? false,
        beforeId: query.cursor,
        limit: query.limit + 1,
      });
      const page = rows.slice(0, query.limit);
      return {
        data: page.map(toView),
        next_cursor: rows.length > query.limit ? (page.at(-1)?.id ?? null) : null,
        unread_count: await countUnread(db, tenantId, userId),
      };
    },

    /** Marks one of the caller's notifications read (reading it again changes nothing). */
    async read(tenantId: string, userId: string, id: string): Promise<TNotification> {
      await markRead(db, tenantId, userId, clock.now().toISOString(), id);
      const row = await findNotification(db, tenantId, userId, id);
      if (!row) throw notFound("notification");
      return toView(row);
    },

    async readAll(tenantId: string, userId: string): Promise<{ updated: number }> {
      return { updated: await markRead(db, tenantId, userId, clock.now().toISOString()) };
    },

    async webhook(tenantId: string): Promise<{ url: string | null; secret: string }> {
      return { url: await webhooks.url(tenantId), secret: webhooks.secret(tenantId) };
    },

    /** Sends a signed `webhook.test` event once and answers how the receiver took it. */
    testWebhook(tenantId: string): Promise<TWebhookDelivery> {
      return webhooks.send({
        id: newId(),
        kind: "webhook.test",
        tenant_id: tenantId,
        title: "Test event",
        message: "A test of the notification webhook: the signature verifies with the secret shown to administrators.",
        data: {},
        created_at: clock.now().toISOString(),
      });
    },

    /** Waits for pending notifications and webhook deliveries (tests). */
    async idle(): Promise<void> {
      while (pending.size > 0) await Promise.allSettled([...pending]);
      await webhooks.idle();
    },

    /** Waits for pending notifications, then ends webhook deliveries under way. */
    async close(): Promise<void> {
      await Promise.allSettled([...pending]);
      await webhooks.close();
    },
  };
}

export type NotificationService = ReturnType<typeof createNotificationService>;
