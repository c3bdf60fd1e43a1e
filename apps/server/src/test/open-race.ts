import { openSqlite } from "../infra/db.ts";

/**
 * Opens each of the given SQLite files at its given instant and creates a table in it, printing one
 * line per file: "ok" or the error's code (`node --import tsx open-race.ts <file>@<epoch ms> …`).
 * Several of these started together open each new file at the same moment, as processes starting
 * side by side do.
 */
for (const argument of process.argv.slice(2)) {
  const at = argument.lastIndexOf("@");
  const file = argument.slice(0, at);
  const due = Number(argument.slice(at + 1));
  while (Date.now() < due) {
    // Wait to the millisecond: every process opens the file at once.
  }
  try {
    const db = openSqlite(file);
    await db.kysely.schema.createTable("opened").ifNotExists().addColumn("by", "integer").execute();
    await db.close();
    process.stdout.write("ok\n");
  } catch (error) {
    process.stdout.write(`${(error as { code?: string }).code ?? (error as Error).message}\n`);
  }
}
