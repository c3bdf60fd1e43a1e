import type { UsageLogsTable } from "../../db/schema.ts";
import type { UsageBatch } from "./batch-write.ts";

type Row = UsageLogsTable;
type TextColumn = { [K in keyof Row]: Row[K] extends string | null ? K : never }[keyof Row];
type NumberColumn = Exclude<keyof Row, TextColumn>;

export const TEXT_COLUMNS = [
  "id",
  "tenant_id",
  "user_id",
  "token_id",
  "channel_id",
  "provider",
  "endpoint",
  "requested_model",
  "upstream_model",
  "error",
  "request_id",
  "created_at",
] as const satisfies readonly TextColumn[];
export const NUMBER_COLUMNS = [
  "stream",
  "status_code",
  "latency_ms",
  "ttft_ms",
  "prompt_tokens",
  "completion_tokens",
  "cached_tokens",
  "reasoning_tokens",
  "total_tokens",
  "attempts",
  "cost_micro_usd",
] as const satisfies readonly NumberColumn[];
// Every column goes across and is written: one added to the table without being listed here fails to compile.
const everyColumn: Exclude<keyof Row, (typeof TEXT_COLUMNS)[number] | (typeof NUMBER_COLUMNS)[number]> extends never ? true : never = true;
void everyColumn;

/**
 * A usage batch as it crosses to the writer thread: the records by column instead of as objects.
 * Structured clone writes each object's every field name and value (about 23 k instructions per
 * record on the serving thread); here the numbers travel in one transferred array, the text as
 * indexes into a list that holds a value once for each run of records that repeat it (the token,
 * model and channel of consecutive records mostly do).
 */
export interface PackedBatch {
  id: string;
  at: string;
  counters: UsageBatch["counters"];
  count: number;
  /** `count` × the number columns, record by record; NaN stands for null. */
  numbers: Float64Array;
  /** `count` × the text columns, record by record: where the value is in `texts`. */
  textIndexes: Int32Array;
  texts: (string | null)[];
}

/**
 * Copies one record's numbers into `out` from `at`, NaN for null: one read per column written out (a
 * function made from the column list), as a loop over the names would read through V8's megamorphic
 * keyed load, about 200 instructions a value.
 */
const packNumbers = new Function(
  "record",
  "out",
  "at",
  NUMBER_COLUMNS.map((column, i) => `out[at + ${i}] = record.${column} ?? NaN;`).join("\n"),
) as (record: Row, out: Float64Array, at: number) => void;

/** One record's text values, in column order, read as `packNumbers` reads its numbers. */
const textsOf = new Function("record", `return [${TEXT_COLUMNS.map((column) => `record.${column} ?? null`).join(", ")}];`) as (
  record: Row,
) => (string | null)[];

export function packBatch(batch: UsageBatch): PackedBatch {
  const records = batch.records;
  const count = records.length;
  const numbers = new Float64Array(count * NUMBER_COLUMNS.length);
  const textIndexes = new Int32Array(count * TEXT_COLUMNS.length);
  const texts: (string | null)[] = [];
  // Per text column, the value last listed and where.
  const last: (string | null | undefined)[] = new Array(TEXT_COLUMNS.length).fill(undefined);
  const lastAt = new Int32Array(TEXT_COLUMNS.length);
  let t = 0;
  for (let r = 0; r < count; r++) {
    const record = records[r] as Row;
    packNumbers(record, numbers, r * NUMBER_COLUMNS.length);
    const values = textsOf(record);
    for (let c = 0; c < values.length; c++) {
      const value = values[c] as string | null;
      if (value !== last[c]) {
        last[c] = value;
        lastAt[c] = texts.length;
        texts.push(value);
      }
      textIndexes[t++] = lastAt[c] as number;
    }
  }
  return { id: batch.id, at: batch.at, counters: batch.counters, count, numbers, textIndexes, texts };
}

/** What `postMessage` may move instead of copying. */
export const transferables = (packed: PackedBatch): ArrayBuffer[] => [
  packed.numbers.buffer as ArrayBuffer,
  packed.textIndexes.buffer as ArrayBuffer,
];

export function unpackBatch(packed: PackedBatch): UsageBatch {
  const { numbers, textIndexes, texts } = packed;
  const records: Row[] = new Array(packed.count);
  let n = 0;
  let t = 0;
  for (let r = 0; r < packed.count; r++) {
    const row: Record<string, string | number | null> = {};
    for (const column of TEXT_COLUMNS) row[column] = texts[textIndexes[t++] as number] ?? null;
    for (const column of NUMBER_COLUMNS) {
      const value = numbers[n++] as number;
      row[column] = Number.isNaN(value) ? null : value;
    }
    records[r] = row as unknown as Row;
  }
  return { id: packed.id, at: packed.at, counters: packed.counters, records };
}
