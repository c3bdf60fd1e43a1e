import type { TTenant } from "@lyss/contracts";
import type { Kysely, Updateable } from "kysely";
import type { Database, TenantsTable } from "../../db/schema.ts";

export const toTenantView = ({ limits: _limits, ...row }: TenantsTable): TTenant => row;

export async function findTenantById(db: Kysely<Database>, id: string): Promise<TenantsTable | undefined> {
  return db.selectFrom("tenants").selectAll().where("id", "=", id).executeTakeFirst();
}

export async function slugExists(db: Kysely<Database>, slug: string): Promise<boolean> {
  return (await db.selectFrom("tenants").select("id").where("slug", "=", slug).executeTakeFirst()) !== undefined;
}

export async function insertTenant(db: Kysely<Database>, row: TenantsTable): Promise<void> {
  await db.insertInto("tenants").values(row).execute();
}

export async function updateTenant(db: Kysely<Database>, id: string, patch: Updateable<TenantsTable>): Promise<void> {
  await db.updateTable("tenants").set(patch).where("id", "=", id).execute();
}

export async function deleteTenant(db: Kysely<Database>, id: string): Promise<void> {
  await db.deleteFrom("tenants").where("id", "=", id).execute();
}

/** All tenants (platform view) or only those the user belongs to. */
export async function listTenants(
  db: Kysely<Database>,
  options: { memberUserId?: string | undefined; beforeId?: string | undefined; limit: number },
): Promise<TenantsTable[]> {
  let query = db.selectFrom("tenants").selectAll("tenants");
  if (options.memberUserId) {
    query = query.innerJoin("memberships", "memberships.tenant_id", "tenants.id").where("memberships.user_id", "=", options.memberUserId);
  }
  if (options.beforeId) query = query.where("tenants.id", "<", options.beforeId);
  return query.orderBy("tenants.id", "desc").limit(options.limit).execute();
}
