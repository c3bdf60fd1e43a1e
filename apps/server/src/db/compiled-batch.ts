import { CompiledQuery, type Kysely, sql } from "kysely";
import { fieldCopier } from "./field-copier.ts";
import type { Database } from "./schema.ts";

/**
 * The row counts of the statements that write `count` rows: as many of `most` as fit, then the rest
 * in powers of two, largest first (250 rows at most 100: 100, 100, 32, 16, 2). A table's batches then
 * run at most the statements of `most` rows and of each power of two below it, whatever their sizes:
 * SQLite prepares each text once (about 0.7 ms for 100 rows of 23 values) and keeps it (12 MiB for
 * all counts from 1 to 100 of the usage insert, where these are 8).
 */
export function statementSizes(count: number, most: number): number[] {
  const sizes: number[] = [];
  let left = count;
  for (; left >= most; left -= most) sizes.push(most);
  for (let size = 2 ** Math.floor(Math.log2(most)); left > 0; size /= 2) {
    if (size > left) continue;
    sizes.push(size);
    left -= size;
  }
  return sizes;
}

/**
 * A multi-row statement compiled once per row count. Building and compiling a Kysely query of a
 * hundred rows takes longer than the database takes to run it, and the usage batches run the same
 * few shapes many times a second; the compiled text is kept and each batch only binds its values,
 * row by row in the order of `columns`, in statements of the sizes `statementSizes` answers. `build`
 * gets placeholder rows (every column null) and must bind nothing but their values.
 */
export function compiledBatch<Row extends object>(
  columns: readonly (keyof Row & string)[],
  rowsPerStatement: number,
  build: (db: Kysely<Database>, rows: Record<string, null>[]) => { compile(): CompiledQuery },
) {
  // Per dialect: the text differs in placeholders and quoting.
  const statements = new Map<string, Map<number, string>>();
  const placeholder = Object.fromEntries(columns.map((column) => [column, null])) as Record<string, null>;
  const copy = fieldCopier<Row>(columns, "null");

  function statementFor(db: Kysely<Database>, dialect: string, count: number): string {
    let byCount = statements.get(dialect);
    if (!byCount) {
      byCount = new Map();
      statements.set(dialect, byCount);
    }
    let text = byCount.get(count);
    if (text === undefined) {
      const compiled = build(
        db,
        Array.from({ length: count }, () => placeholder),
      ).compile();
      if (compiled.parameters.length !== count * columns.length) {
        throw new Error(`a batched statement binds ${compiled.parameters.length} values, not ${count * columns.length}`);
      }
      text = compiled.sql;
      byCount.set(count, text);
    }
    return text;
  }

  /** Runs the statement over `rows`, at most `rowsPerStatement` at a time. */
  return async function run(db: Kysely<Database>, rows: readonly Row[]): Promise<void> {
    const dialect = db.selectNoFrom(sql<number>`${0}`.as("probe")).compile().sql;
    let start = 0;
    for (const size of statementSizes(rows.length, rowsPerStatement)) {
      const parameters: unknown[] = new Array(size * columns.length);
      for (let index = 0; index < size; index++) copy(rows[start + index] as Row, parameters, index * columns.length);
      await db.executeQuery(CompiledQuery.raw(statementFor(db, dialect, size), parameters));
      start += size;
    }
  };
}
