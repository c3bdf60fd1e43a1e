import type { TUser } from "@lyss/contracts";
import type { Kysely, Selectable, Updateable } from "kysely";
import type { Database, UsersTable } from "../../db/schema.ts";

export type UserRow = Selectable<UsersTable>;

export function toUserView(row: UserRow): TUser {
  return {
    id: row.id,
    email: row.email,
    name: row.name,
    is_platform_admin: row.is_platform_admin === 1,
    status: row.status,
    created_at: row.created_at,
    updated_at: row.updated_at,
    last_login_at: row.last_login_at,
  };
}

export async function findUserById(db: Kysely<Database>, id: string): Promise<UserRow | undefined> {
  return db.selectFrom("users").selectAll().where("id", "=", id).executeTakeFirst();
}

export async function findUserByEmail(db: Kysely<Database>, email: string): Promise<UserRow | undefined> {
  return db.selectFrom("users").selectAll().where("email", "=", email.toLowerCase()).executeTakeFirst();
}

export async function insertUser(db: Kysely<Database>, row: Omit<UserRow, "token_version">): Promise<void> {
  await db.insertInto("users").values(row).execute();
}

export async function updateUser(db: Kysely<Database>, id: string, patch: Updateable<UsersTable>): Promise<void> {
  await db.updateTable("users").set(patch).where("id", "=", id).execute();
}

/** Bumps the token version, which makes every access token issued before it invalid. */
export async function bumpTokenVersion(db: Kysely<Database>, id: string, updatedAt: string): Promise<void> {
  await db
    .updateTable("users")
    .set((eb) => ({ token_version: eb("token_version", "+", 1), updated_at: updatedAt }))
    .where("id", "=", id)
    .execute();
}

export async function deleteUser(db: Kysely<Database>, id: string): Promise<void> {
  await db.deleteFrom("users").where("id", "=", id).execute();
}

export async function listUsers(
  db: Kysely<Database>,
  options: { search?: string | undefined; beforeId?: string | undefined; limit: number },
): Promise<UserRow[]> {
  let query = db.selectFrom("users").selectAll();
  if (options.search) {
    const pattern = `%${options.search.toLowerCase().replace(/[%_\\]/g, (c) => `\\${c}`)}%`;
    query = query.where((eb) => eb.or([eb("email", "like", pattern), eb(eb.fn("lower", ["name"]), "like", pattern)]));
  }
  if (options.beforeId) query = query.where("id", "<", options.beforeId);
  return query.orderBy("id", "desc").limit(options.limit).execute();
}

export async function countUsers(db: Kysely<Database>): Promise<number> {
  const row = await db
    .selectFrom("users")
    .select((eb) => eb.fn.countAll<number>().as("count"))
    .executeTakeFirstOrThrow();
  return Number(row.count);
}

export async function countActivePlatformAdmins(db: Kysely<Database>): Promise<number> {
  const row = await db
    .selectFrom("users")
    .select((eb) => eb.fn.countAll<number>().as("count"))
    .where("is_platform_admin", "=", 1)
    .where("status", "=", "active")
    .executeTakeFirstOrThrow();
  return Number(row.count);
}
