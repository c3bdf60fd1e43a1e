import type { Kysely } from "kysely";
import type { AuditLogsTable, Database } from "../../db/schema.ts";

export interface AuditFilter {
  /** A tenant id, or null for platform-wide entries only, or undefined for every entry. */
  tenantId: string | null | undefined;
  action?: string | undefined;
  actorUserId?: string | undefined;
  targetType?: string | undefined;
  targetId?: string | undefined;
  from?: string | undefined;
  to?: string | undefined;
  beforeId?: string | undefined;
  limit: number;
}

export async function insertAuditLog(db: Kysely<Database>, row: AuditLogsTable): Promise<void> {
  await db.insertInto("audit_logs").values(row).execute();
}

export async function listAuditLogs(db: Kysely<Database>, filter: AuditFilter): Promise<AuditLogsTable[]> {
  let query = db.selectFrom("audit_logs").selectAll();
  if (filter.tenantId === null) query = query.where("tenant_id", "is", null);
  else if (filter.tenantId !== undefined) query = query.where("tenant_id", "=", filter.tenantId);
  if (filter.action) query = query.where("action", "=", filter.action);
  if (filter.actorUserId) query = query.where("actor_user_id", "=", filter.actorUserId);
  if (filter.targetType) query = query.where("target_type", "=", filter.targetType);
  if (filter.targetId) query = query.where("target_id", "=", filter.targetId);
  if (filter.from) query = query.where("created_at", ">=", filter.from);
  if (filter.to) query = query.where("created_at", "<", filter.to);
  if (filter.beforeId) query = query.where("id", "<", filter.beforeId);
  return query.orderBy("id", "desc").limit(filter.limit).execute();
}
