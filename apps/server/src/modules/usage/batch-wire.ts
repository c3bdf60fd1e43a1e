import { fieldCopier } from "../../db/field-copier.ts";
import type { UsageLogsTable } from "../../db/schema.ts";
import { writeNewId } from "../../infra/ids.ts";
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
 * The text columns whose value differs with every record. Kept as strings, each record's would stay
 * until its batch is written (up to a second), outliving young collections; they are ASCII (a UUID, a
 * request id of `[\w.:-]`, a timestamp), so the packer copies their characters into bytes instead, and
 * the strings die young.
 */
const BYTE_COLUMNS: readonly (typeof TEXT_COLUMNS)[number][] = ["id", "request_id", "created_at"];
const IN_BYTES = TEXT_COLUMNS.map((column) => BYTE_COLUMNS.includes(column));
/** The longest value kept in bytes (its length goes in the byte before it). */
const MAX_BYTES = 255;
const ID = TEXT_COLUMNS.indexOf("id");
/** A UUID's text. */
const ID_LENGTH = 36;

/**
 * A usage batch as the recorder keeps it and as it crosses to the writer thread: the records by column
 * instead of as objects. Structured clone writes each object's every field name and value (about 23 k
 * instructions per record on the serving thread); here the numbers travel in one typed array, the text
 * as indexes into a list that holds a value once for each run of records that repeat it (the token,
 * model and channel of consecutive records mostly do), or, for the values that differ with every
 * record, as characters in one byte array.
 */
export interface PackedBatch {
  id: string;
  at: string;
  counters: UsageBatch["counters"];
  count: number;
  /** `count` × the number columns, record by record; NaN stands for null. */
  numbers: Float64Array;
  /**
   * `count` × the text columns, record by record: where the value is in `texts`, or, when negative
   * (`~at`), at `at` in `chars`: its length, then its characters.
   */
  textIndexes: Int32Array;
  texts: (string | null)[];
  chars: Uint8Array;
}

const packNumbers = fieldCopier<Row>(NUMBER_COLUMNS, "NaN");
const copyTexts = fieldCopier<Row>(TEXT_COLUMNS, "null");

/** Makes a record from its values (the text columns' first, then the numbers'), all its fields in one literal. */
const makeRow = new Function(
  "values",
  `return { ${[...TEXT_COLUMNS, ...NUMBER_COLUMNS].map((column, index) => `${JSON.stringify(column)}: values[${index}]`).join(", ")} };`,
) as (values: (string | number | null)[]) => Row;

/** Records per batch a packer makes room for at first; it grows by doubling. */
const FIRST_CAPACITY = 64;

/** A typed array of (at least) `length`, with what `array` holds: `array` itself when it is long enough. */
function atLeast<T extends Float64Array | Int32Array | Uint8Array>(array: T, length: number): T {
  if (length <= array.length) return array;
  const larger = new (array.constructor as new (length: number) => T)(Math.max(length, array.length * 2));
  larger.set(array);
  return larger;
}

/**
 * Packs records one at a time, as they are made: the recorder keeps its pending records as columns
 * instead of as objects. A record object held until its batch is written (up to 500 of them, for up to
 * a second) outlived two young-generation collections and was copied and promoted on the way; packed,
 * the object dies young and what stays is numbers in typed arrays and the text values, each run of a
 * repeated value once.
 */
export class BatchPacker {
  private numbers = new Float64Array(FIRST_CAPACITY * NUMBER_COLUMNS.length);
  private textIndexes = new Int32Array(FIRST_CAPACITY * TEXT_COLUMNS.length);
  private texts: (string | null)[] = [];
  private chars = new Uint8Array(FIRST_CAPACITY * 96);
  private charsUsed = 0;
  // Per text column, the value last listed and where.
  private readonly last: (string | null | undefined)[] = new Array(TEXT_COLUMNS.length).fill(undefined);
  private readonly lastAt = new Int32Array(TEXT_COLUMNS.length);
  private readonly values: (string | null)[] = new Array(TEXT_COLUMNS.length);
  /** Records packed since the last `take`. */
  count = 0;

  /** Packs a record; one without an id (absent or null) gets a fresh one, written as bytes (the string is never made). */
  add(record: Omit<Row, "id"> & { id?: string }) {
    this.numbers = atLeast(this.numbers, (this.count + 1) * NUMBER_COLUMNS.length);
    this.textIndexes = atLeast(this.textIndexes, (this.count + 1) * TEXT_COLUMNS.length);
    packNumbers(record as Row, this.numbers, this.count * NUMBER_COLUMNS.length);
    const { values, last, lastAt, texts, textIndexes } = this;
    copyTexts(record as Row, values, 0);
    let t = this.count * TEXT_COLUMNS.length;
    for (let c = 0; c < values.length; c++) {
      const value = values[c] as string | null;
      const at = c === ID && value === null ? this.addNewId() : IN_BYTES[c] && value !== null ? this.addChars(value) : -1;
      if (at >= 0) {
        textIndexes[t++] = ~at;
        continue;
      }
      if (value !== last[c]) {
        last[c] = value;
        lastAt[c] = texts.length;
        texts.push(value);
      }
      textIndexes[t++] = lastAt[c] as number;
    }
    this.count++;
  }

  /** The records packed so far as one batch (arrays of its own); the packer starts again, empty. */
  take(id: string, at: string, counters: UsageBatch["counters"]): PackedBatch {
    const { count } = this;
    const packed: PackedBatch = {
      id,
      at,
      counters,
      count,
      numbers: this.numbers.slice(0, count * NUMBER_COLUMNS.length),
      textIndexes: this.textIndexes.slice(0, count * TEXT_COLUMNS.length),
      texts: this.texts,
      chars: this.chars.slice(0, this.charsUsed),
    };
    this.count = 0;
    this.texts = [];
    this.charsUsed = 0;
    this.last.fill(undefined);
    return packed;
  }

  /** Writes a fresh id into `chars`, after its length: where it went. */
  private addNewId(): number {
    const chars = atLeast(this.chars, this.charsUsed + 1 + ID_LENGTH);
    this.chars = chars;
    const at = this.charsUsed;
    chars[at] = ID_LENGTH;
    writeNewId(chars, at + 1);
    this.charsUsed = at + 1 + ID_LENGTH;
    return at;
  }

  /** Copies an ASCII value into `chars`, after its length: where it went, or -1 (not ASCII, or too long). */
  private addChars(value: string): number {
    const length = value.length;
    if (length > MAX_BYTES) return -1;
    const chars = atLeast(this.chars, this.charsUsed + 1 + length);
    this.chars = chars;
    const at = this.charsUsed;
    chars[at] = length;
    for (let i = 0; i < length; i++) {
      const code = value.charCodeAt(i);
      if (code > 127) return -1;
      chars[at + 1 + i] = code;
    }
    this.charsUsed = at + 1 + length;
    return at;
  }
}

/** A batch of record objects, packed. */
export function packBatch(batch: UsageBatch): PackedBatch {
  const packer = new BatchPacker();
  for (const record of batch.records) packer.add(record);
  return packer.take(batch.id, batch.at, batch.counters);
}

export function unpackBatch(packed: PackedBatch): UsageBatch {
  // Every field read before the loop: the writer thread's optimizing compiler compiles this function
  // while its loop runs (on-stack replacement), and a field first read after the loop had no type
  // feedback then, which threw the compiled code away at the end of the loop, batch after batch.
  const { id, at: batchAt, counters, count, numbers, textIndexes, texts } = packed;
  const chars = Buffer.from(packed.chars.buffer, packed.chars.byteOffset, packed.chars.byteLength);
  const records: Row[] = new Array(count);
  const values: (string | number | null)[] = new Array(TEXT_COLUMNS.length + NUMBER_COLUMNS.length);
  let n = 0;
  let t = 0;
  for (let r = 0; r < count; r++) {
    let v = 0;
    for (let c = 0; c < TEXT_COLUMNS.length; c++) {
      const index = textIndexes[t++] as number;
      if (index >= 0) values[v++] = texts[index] ?? null;
      else {
        const at = ~index + 1;
        values[v++] = chars.toString("latin1", at, at + (chars[~index] as number));
      }
    }
    for (let c = 0; c < NUMBER_COLUMNS.length; c++) {
      const value = numbers[n++] as number;
      values[v++] = Number.isNaN(value) ? null : value;
    }
    records[r] = makeRow(values);
  }
  return { id, at: batchAt, counters, records };
}
