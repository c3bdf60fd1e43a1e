import { type Migration, type MigrationProvider, type MigrationResult, Migrator, sql } from "kysely";
import type { Db } from "../infra/db.ts";
import { MIGRATIONS } from "./migrations/index.ts";

export const MIGRATION_TABLE = "lyss_migrations";
const MIGRATION_LOCK_TABLE = "lyss_migrations_lock";

export class SchemaTooNewError extends Error {
  constructor(readonly unknown: string[]) {
    super(
      `the database was migrated by a newer Lyss (unknown migrations: ${unknown.join(", ")}); ` +
        "upgrade Lyss or point it at another database",
    );
    this.name = "SchemaTooNewError";
  }
}

class StaticProvider implements MigrationProvider {
  constructor(private readonly migrations: Record<string, Migration>) {}
  async getMigrations() {
    return this.migrations;
  }
}

async function appliedMigrations(db: Db): Promise<string[]> {
  try {
    const rows = await sql<{ name: string }>`select name from ${sql.table(MIGRATION_TABLE)}`.execute(db.kysely);
    return rows.rows.map((row) => row.name);
  } catch {
    return [];
  }
}

/** Refuses a database that has migrations this build does not know. */
export async function assertSchemaNotNewer(db: Db, migrations = MIGRATIONS): Promise<void> {
  const known = new Set(Object.keys(migrations));
  const unknown = (await appliedMigrations(db)).filter((name) => !known.has(name));
  if (unknown.length > 0) throw new SchemaTooNewError(unknown);
}

/**
 * Brings the schema up to date. Each migration runs in a transaction; on PostgreSQL an advisory
 * lock and on SQLite `BEGIN IMMEDIATE` make a second instance wait and then find nothing to do.
 */
export async function migrateToLatest(db: Db, migrations = MIGRATIONS): Promise<MigrationResult[]> {
  await assertSchemaNotNewer(db, migrations);
  const migrator = new Migrator({
    db: db.kysely,
    provider: new StaticProvider(migrations),
    migrationTableName: MIGRATION_TABLE,
    migrationLockTableName: MIGRATION_LOCK_TABLE,
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw error instanceof Error ? error : new Error(String(error));
  return results ?? [];
}

export async function pendingMigrations(db: Db, migrations = MIGRATIONS): Promise<string[]> {
  const applied = new Set(await appliedMigrations(db));
  return Object.keys(migrations).filter((name) => !applied.has(name));
}
