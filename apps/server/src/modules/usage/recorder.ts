import type { Kysely } from "kysely";
import type { Logger } from "pino";
import { compiledBatch } from "../../db/compiled-batch.ts";
import type { Database, UsageLogsTable } from "../../db/schema.ts";
import { newId } from "../../infra/ids.ts";
import { touchTokens } from "../tokens/repository.ts";

export type UsageRecord = Omit<UsageLogsTable, "id">;

const USAGE_COLUMNS = [
  "id",
  "tenant_id",
  "user_id",
  "token_id",
  "channel_id",
  "provider",
  "endpoint",
  "requested_model",
  "upstream_model",
  "stream",
  "status_code",
  "error",
  "latency_ms",
  "ttft_ms",
  "prompt_tokens",
  "completion_tokens",
  "cached_tokens",
  "reasoning_tokens",
  "total_tokens",
  "attempts",
  "request_id",
  "cost_micro_usd",
  "created_at",
] as const satisfies readonly (keyof UsageLogsTable)[];
// Every column is written: a column added to the table without being listed here fails to compile.
const everyColumn: Exclude<keyof UsageLogsTable, (typeof USAGE_COLUMNS)[number]> extends never ? true : never = true;
void everyColumn;

/** 100 records of 23 values per statement stays far below both databases' parameter limits. */
const insertUsage = compiledBatch<UsageLogsTable>(USAGE_COLUMNS, 100, (db, rows) => db.insertInto("usage_logs").values(rows as never));

/** Work that must land in the same transaction as a batch of usage records (counters, rollups). */
export type BatchWriter = (trx: Kysely<Database>, batch: UsageLogsTable[]) => Promise<void>;

/**
 * Usage records are buffered in memory and written in batches, off the request path: every
 * `intervalMs`, when `batchSize` records wait, and on shutdown. A failed batch is retried on the next
 * flush, so a database hiccup loses nothing.
 */
export function createUsageRecorder(db: Kysely<Database>, logger: Logger, options: { intervalMs?: number; batchSize?: number } = {}) {
  const batchSize = options.batchSize ?? 500;
  let pending: UsageLogsTable[] = [];
  let flushing: Promise<void> | undefined;
  const listeners = new Set<(record: UsageLogsTable) => void>();
  const writers: BatchWriter[] = [];

  async function writeBatch(batch: UsageLogsTable[]) {
    const lastUsed = new Map<string, string>();
    for (const row of batch) if (row.token_id) lastUsed.set(row.token_id, row.created_at);
    await db.transaction().execute(async (trx) => {
      await insertUsage(trx, batch);
      await touchTokens(trx, lastUsed);
      for (const writer of writers) await writer(trx, batch);
    });
  }

  async function flush(): Promise<void> {
    if (flushing) await flushing;
    if (pending.length === 0) return;
    const batch = pending;
    pending = [];
    flushing = writeBatch(batch)
      .catch((error: Error) => {
        logger.error({ err: error, records: batch.length }, "usage batch failed; kept for the next flush");
        pending = [...batch, ...pending];
      })
      .finally(() => {
        flushing = undefined;
      });
    await flushing;
  }

  const timer = setInterval(() => void flush(), options.intervalMs ?? 1000);
  timer.unref();

  return {
    /** Queues one record; the recorder keeps the object itself (it becomes the stored row, with an id). */
    record(record: UsageRecord) {
      // The record is the caller's fresh object: it gets its id in place instead of being copied.
      const row = record as UsageLogsTable;
      row.id = newId();
      pending.push(row);
      for (const listener of listeners) listener(row);
      if (pending.length >= batchSize) void flush();
    },
    /** Observers of each record as it is made (metrics, live views). */
    onRecord(listener: (record: UsageLogsTable) => void) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    /** Adds work to every batch's transaction. */
    addBatchWriter(writer: BatchWriter) {
      writers.push(writer);
    },
    flush,
    async close() {
      clearInterval(timer);
      await flush();
    },
  };
}

export type UsageRecorder = ReturnType<typeof createUsageRecorder>;
