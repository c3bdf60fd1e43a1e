import type { Kysely } from "kysely";
import type { AuthSessionsTable, Database, RefreshTokensTable } from "../../db/schema.ts";

export async function insertSession(db: Kysely<Database>, row: AuthSessionsTable): Promise<void> {
  await db.insertInto("auth_sessions").values(row).execute();
}

export async function findSession(db: Kysely<Database>, id: string): Promise<AuthSessionsTable | undefined> {
  return db.selectFrom("auth_sessions").selectAll().where("id", "=", id).executeTakeFirst();
}

export async function revokeSession(db: Kysely<Database>, id: string, at: string): Promise<void> {
  await db.updateTable("auth_sessions").set({ revoked_at: at }).where("id", "=", id).where("revoked_at", "is", null).execute();
}

/** Revokes every live session of a user except one; answers the ids revoked. */
export async function revokeSessionsOfUser(db: Kysely<Database>, userId: string, at: string, exceptSessionId?: string): Promise<string[]> {
  let query = db.selectFrom("auth_sessions").select("id").where("user_id", "=", userId).where("revoked_at", "is", null);
  if (exceptSessionId) query = query.where("id", "!=", exceptSessionId);
  const ids = (await query.execute()).map((row) => row.id);
  if (ids.length > 0) await db.updateTable("auth_sessions").set({ revoked_at: at }).where("id", "in", ids).execute();
  return ids;
}

export async function insertRefreshToken(db: Kysely<Database>, row: RefreshTokensTable): Promise<void> {
  await db.insertInto("refresh_tokens").values(row).execute();
}

export async function findRefreshToken(db: Kysely<Database>, tokenHash: string) {
  return db
    .selectFrom("refresh_tokens")
    .innerJoin("auth_sessions", "auth_sessions.id", "refresh_tokens.session_id")
    .select([
      "refresh_tokens.token_hash",
      "refresh_tokens.session_id",
      "refresh_tokens.expires_at",
      "refresh_tokens.used_at",
      "auth_sessions.user_id",
      "auth_sessions.revoked_at",
      "auth_sessions.expires_at as session_expires_at",
    ])
    .where("refresh_tokens.token_hash", "=", tokenHash)
    .executeTakeFirst();
}

/** Marks a refresh token used; answers false if it was already used (a replay). */
export async function consumeRefreshToken(db: Kysely<Database>, tokenHash: string, at: string): Promise<boolean> {
  const result = await db
    .updateTable("refresh_tokens")
    .set({ used_at: at })
    .where("token_hash", "=", tokenHash)
    .where("used_at", "is", null)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}
