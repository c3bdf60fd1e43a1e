import type { Kysely } from "kysely";
import type { Database, NotificationsTable } from "../../db/schema.ts";

export interface RecipientNotificationRow extends NotificationsTable {
  read_at: string | null;
}

/**
 * Stores a notification and its recipients in one transaction; answers false (storing nothing) when the
 * tenant already has one with the same dedupe key.
 */
export async function insertNotification(db: Kysely<Database>, row: NotificationsTable, userIds: string[]): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const inserted = await trx
      .insertInto("notifications")
      .values(row)
      .onConflict((conflict) => conflict.columns(["tenant_id", "dedupe_key"]).doNothing())
      .returning("id")
      .executeTakeFirst();
    if (!inserted) return false;
    if (userIds.length > 0) {
      await trx
        .insertInto("notification_recipients")
        .values(userIds.map((userId) => ({ tenant_id: row.tenant_id, user_id: userId, notification_id: row.id, read_at: null })))
        .execute();
    }
    return true;
  });
}

/** The user's notifications in the tenant, newest first; `beforeId` continues a page. */
export async function listNotifications(
  db: Kysely<Database>,
  tenantId: string,
  userId: string,
  filter: { unread: boolean; beforeId?: string | undefined; limit: number },
): Promise<RecipientNotificationRow[]> {
  let query = db
    .selectFrom("notification_recipients as r")
    .innerJoin("notifications as n", "n.id", "r.notification_id")
    .selectAll("n")
    .select("r.read_at")
    .where("r.tenant_id", "=", tenantId)
    .where("r.user_id", "=", userId)
    .where("n.tenant_id", "=", tenantId);
  if (filter.unread) query = query.where("r.read_at", "is", null);
  if (filter.beforeId) query = query.where("r.notification_id", "<", filter.beforeId);
  return query.orderBy("r.notification_id", "desc").limit(filter.limit).execute();
}

export async function findNotification(
  db: Kysely<Database>,
  tenantId: string,
  userId: string,
  id: string,
): Promise<RecipientNotificationRow | undefined> {
  return db
    .selectFrom("notification_recipients as r")
    .innerJoin("notifications as n", "n.id", "r.notification_id")
    .selectAll("n")
    .select("r.read_at")
    .where("r.tenant_id", "=", tenantId)
    .where("r.user_id", "=", userId)
    .where("r.notification_id", "=", id)
    .where("n.tenant_id", "=", tenantId)
    .executeTakeFirst();
}

export async function countUnread(db: Kysely<Database>, tenantId: string, userId: string): Promise<number> {
  const row = await db
    .selectFrom("notification_recipients")
    .select((eb) => eb.fn.countAll<number>().as("count"))
    .where("tenant_id", "=", tenantId)
    .where("user_id", "=", userId)
    .where("read_at", "is", null)
    .executeTakeFirstOrThrow();
  return Number(row.count);
}

/** Marks the user's notifications read (one, or all when `id` is undefined); answers how many changed. */
export async function markRead(db: Kysely<Database>, tenantId: string, userId: string, at: string, id?: string): Promise<number> {
  let query = db
    .updateTable("notification_recipients")
    .set({ read_at: at })
    .where("tenant_id", "=", tenantId)
    .where("user_id", "=", userId)
    .where("read_at", "is", null);
  if (id !== undefined) query = query.where("notification_id", "=", id);
  const result = await query.executeTakeFirst();
  return Number(result.numUpdatedRows);
}
