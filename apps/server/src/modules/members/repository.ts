import type { TMember, TTenantRole } from "@lyss/contracts";
import type { Kysely } from "kysely";
import type { Database, InvitationsTable, TenantsTable } from "../../db/schema.ts";

export interface MembershipWithTenant {
  role: TTenantRole;
  tenant: TenantsTable;
  /** The member's own quota limits in this tenant (JSON text). */
  limits: string;
}

/** Every tenant the user belongs to, oldest membership first (the first is the default tenant). */
export async function listMembershipsOfUser(db: Kysely<Database>, userId: string): Promise<MembershipWithTenant[]> {
  const rows = await db
    .selectFrom("memberships")
    .innerJoin("tenants", "tenants.id", "memberships.tenant_id")
    .select([
      "memberships.role",
      "tenants.id",
      "tenants.name",
      "tenants.slug",
      "tenants.status",
      "tenants.limits",
      "tenants.created_at",
      "tenants.updated_at",
      "memberships.limits as member_limits",
      "memberships.created_at as joined_at",
    ])
    .where("memberships.user_id", "=", userId)
    .orderBy("memberships.created_at")
    .orderBy("tenants.id")
    .execute();
  return rows.map(({ role, joined_at: _joined, member_limits, ...tenant }) => ({ role, tenant, limits: member_limits }));
}

export async function findMember(db: Kysely<Database>, tenantId: string, userId: string): Promise<TMember | undefined> {
  return db
    .selectFrom("memberships")
    .innerJoin("users", "users.id", "memberships.user_id")
    .select(["users.id as user_id", "users.email", "users.name", "memberships.role", "users.status", "memberships.created_at as joined_at"])
    .where("memberships.tenant_id", "=", tenantId)
    .where("memberships.user_id", "=", userId)
    .executeTakeFirst();
}

export async function listMembers(db: Kysely<Database>, tenantId: string): Promise<TMember[]> {
  return db
    .selectFrom("memberships")
    .innerJoin("users", "users.id", "memberships.user_id")
    .select(["users.id as user_id", "users.email", "users.name", "memberships.role", "users.status", "memberships.created_at as joined_at"])
    .where("memberships.tenant_id", "=", tenantId)
    .orderBy("memberships.created_at")
    .execute();
}

export async function insertMembership(
  db: Kysely<Database>,
  tenantId: string,
  row: { user_id: string; role: TTenantRole; created_at: string },
): Promise<void> {
  await db
    .insertInto("memberships")
    .values({ tenant_id: tenantId, limits: "[]", ...row })
    .execute();
}

export async function membershipLimits(db: Kysely<Database>, tenantId: string, userId: string): Promise<string> {
  const row = await db
    .selectFrom("memberships")
    .select("limits")
    .where("tenant_id", "=", tenantId)
    .where("user_id", "=", userId)
    .executeTakeFirst();
  return row?.limits ?? "[]";
}

export async function updateMembershipLimits(db: Kysely<Database>, tenantId: string, userId: string, limits: string): Promise<void> {
  await db.updateTable("memberships").set({ limits }).where("tenant_id", "=", tenantId).where("user_id", "=", userId).execute();
}

export async function updateMembershipRole(db: Kysely<Database>, tenantId: string, userId: string, role: TTenantRole): Promise<void> {
  await db.updateTable("memberships").set({ role }).where("tenant_id", "=", tenantId).where("user_id", "=", userId).execute();
}

export async function deleteMembership(db: Kysely<Database>, tenantId: string, userId: string): Promise<void> {
  await db.deleteFrom("memberships").where("tenant_id", "=", tenantId).where("user_id", "=", userId).execute();
}

export async function countOwners(db: Kysely<Database>, tenantId: string): Promise<number> {
  const row = await db
    .selectFrom("memberships")
    .select((eb) => eb.fn.countAll<number>().as("count"))
    .where("tenant_id", "=", tenantId)
    .where("role", "=", "owner")
    .executeTakeFirstOrThrow();
  return Number(row.count);
}

export async function insertInvitation(db: Kysely<Database>, row: InvitationsTable): Promise<void> {
  await db.insertInto("invitations").values(row).execute();
}

export async function listInvitations(db: Kysely<Database>, tenantId: string): Promise<InvitationsTable[]> {
  return db
    .selectFrom("invitations")
    .selectAll()
    .where("tenant_id", "=", tenantId)
    .where("accepted_at", "is", null)
    .orderBy("id", "desc")
    .execute();
}

export async function deleteInvitation(db: Kysely<Database>, tenantId: string, id: string): Promise<number> {
  const result = await db.deleteFrom("invitations").where("tenant_id", "=", tenantId).where("id", "=", id).executeTakeFirst();
  return Number(result.numDeletedRows);
}

export async function findInvitationByTokenHash(db: Kysely<Database>, tokenHash: string) {
  return db.selectFrom("invitations").selectAll().where("token_hash", "=", tokenHash).executeTakeFirst();
}

/** Marks an invitation used; answers false when another request used it first. */
export async function markInvitationAccepted(db: Kysely<Database>, id: string, at: string): Promise<boolean> {
  const result = await db
    .updateTable("invitations")
    .set({ accepted_at: at })
    .where("id", "=", id)
    .where("accepted_at", "is", null)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}
