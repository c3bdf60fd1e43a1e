import type { Kysely, Updateable } from "kysely";
import type { AccessTokensTable, Database } from "../../db/schema.ts";

export async function insertToken(db: Kysely<Database>, row: AccessTokensTable): Promise<void> {
  await db.insertInto("access_tokens").values(row).execute();
}

export async function findToken(db: Kysely<Database>, tenantId: string, id: string): Promise<AccessTokensTable | undefined> {
  return db.selectFrom("access_tokens").selectAll().where("tenant_id", "=", tenantId).where("id", "=", id).executeTakeFirst();
}

/** The gateway's lookup: by the key's hash alone, since the key is all a client presents. */
export async function findTokenByHash(db: Kysely<Database>, keyHash: string): Promise<AccessTokensTable | undefined> {
  return db.selectFrom("access_tokens").selectAll().where("key_hash", "=", keyHash).executeTakeFirst();
}

export async function listEnabledTokens(db: Kysely<Database>, limit: number): Promise<AccessTokensTable[]> {
  return db.selectFrom("access_tokens").selectAll().where("status", "=", "enabled").limit(limit).execute();
}

export async function listTokens(db: Kysely<Database>, tenantId: string, userId?: string): Promise<AccessTokensTable[]> {
  let query = db.selectFrom("access_tokens").selectAll().where("tenant_id", "=", tenantId);
  if (userId) query = query.where("user_id", "=", userId);
  return query.orderBy("id", "desc").execute();
}

export async function updateToken(db: Kysely<Database>, tenantId: string, id: string, patch: Updateable<AccessTokensTable>): Promise<void> {
  await db.updateTable("access_tokens").set(patch).where("tenant_id", "=", tenantId).where("id", "=", id).execute();
}

export async function deleteToken(db: Kysely<Database>, tenantId: string, id: string): Promise<void> {
  await db.deleteFrom("access_tokens").where("tenant_id", "=", tenantId).where("id", "=", id).execute();
}

export async function touchTokens(db: Kysely<Database>, lastUsed: Map<string, string>): Promise<void> {
  for (const [id, at] of lastUsed) await db.updateTable("access_tokens").set({ last_used_at: at }).where("id", "=", id).execute();
}
