import { CompiledQuery, type Kysely, sql } from "kysely";
import { fieldCopier } from "./field-copier.ts";
import type { Database } from "./schema.ts";

/**
 * A multi-row statement compiled once per row count. Building and compiling a Kysely query of a
 * hundred rows takes longer than the database takes to run it, and the usage batches run the same
 * few shapes many times a second; the compiled text is kept and each batch only binds its values,
 * row by row in the order of `columns`. `build` gets placeholder rows (every column null) and must
 * bind nothing but their values.
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

  /** Runs the statement over `rows`, `rowsPerStatement` at a time. */
  return async function run(db: Kysely<Database>, rows: readonly Row[]): Promise<void> {
    const dialect = db.selectNoFrom(sql<number>`${0}`.as("probe")).compile().sql;
    for (let start = 0; start < rows.length; start += rowsPerStatement) {
      const end = Math.min(rows.length, start + rowsPerStatement);
      const parameters: unknown[] = new Array((end - start) * columns.length);
      for (let index = start; index < end; index++) copy(rows[index] as Row, parameters, (index - start) * columns.length);
      await db.executeQuery(CompiledQuery.raw(statementFor(db, dialect, end - start), parameters));
    }
  };
}
