import type { Kysely, Updateable } from "kysely";
import type { ChannelsTable, Database } from "../../db/schema.ts";

export async function insertChannel(db: Kysely<Database>, row: ChannelsTable): Promise<void> {
  await db.insertInto("channels").values(row).execute();
}

export async function findChannel(db: Kysely<Database>, tenantId: string, id: string): Promise<ChannelsTable | undefined> {
  return db.selectFrom("channels").selectAll().where("tenant_id", "=", tenantId).where("id", "=", id).executeTakeFirst();
}

export async function listChannels(db: Kysely<Database>, tenantId: string): Promise<ChannelsTable[]> {
  return db.selectFrom("channels").selectAll().where("tenant_id", "=", tenantId).orderBy("priority", "desc").orderBy("id").execute();
}

/** Every channel of every tenant: only for warming the catalogue and for key rotation. */
export async function listAllChannels(db: Kysely<Database>): Promise<ChannelsTable[]> {
  return db.selectFrom("channels").selectAll().orderBy("id").execute();
}

export async function updateChannel(db: Kysely<Database>, tenantId: string, id: string, patch: Updateable<ChannelsTable>): Promise<void> {
  await db.updateTable("channels").set(patch).where("tenant_id", "=", tenantId).where("id", "=", id).execute();
}

export async function deleteChannel(db: Kysely<Database>, tenantId: string, id: string): Promise<number> {
  const result = await db.deleteFrom("channels").where("tenant_id", "=", tenantId).where("id", "=", id).executeTakeFirst();
  return Number(result.numDeletedRows);
}

/**
 * Moves a channel from one status to another with its reason; answers whether it did (0 or 1 rows),
 * so concurrent instances change (and audit) it only once.
 */
export async function setChannelStatus(
  db: Kysely<Database>,
  tenantId: string,
  id: string,
  change: { from: ChannelsTable["status"]; to: ChannelsTable["status"]; reason: string | null; updatedAt: string },
): Promise<number> {
  const result = await db
    .updateTable("channels")
    .set({ status: change.to, status_reason: change.reason, updated_at: change.updatedAt })
    .where("tenant_id", "=", tenantId)
    .where("id", "=", id)
    .where("status", "=", change.from)
    .executeTakeFirst();
  return Number(result.numUpdatedRows);
}

/** Active tenants that have channels the health probes look at (enabled or auto-disabled). */
export async function tenantsWithProbedChannels(db: Kysely<Database>): Promise<string[]> {
  const rows = await db
    .selectFrom("channels")
    .innerJoin("tenants", "tenants.id", "channels.tenant_id")
    .select("channels.tenant_id")
    .distinct()
    .where("tenants.status", "=", "active")
    .where("channels.status", "in", ["enabled", "auto_disabled"])
    .execute();
  return rows.map((row) => row.tenant_id);
}
