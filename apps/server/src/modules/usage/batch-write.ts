import type { Kysely } from "kysely";
import { compiledBatch } from "../../db/compiled-batch.ts";
import type { Database, UsageLogsTable } from "../../db/schema.ts";
import { addToCounters, type CounterDelta } from "../quota/counters.ts";
import { touchTokens } from "../tokens/repository.ts";
import { NUMBER_COLUMNS, TEXT_COLUMNS } from "./batch-wire.ts";
import { DAY_MS, writeUsageRollups } from "./rollups.ts";

/** Every column of the table (batch-wire.ts checks that none is left out). */
const USAGE_COLUMNS = [...TEXT_COLUMNS, ...NUMBER_COLUMNS];

/** 100 records of 23 values per statement stays far below both databases' parameter limits. */
const insertUsage = compiledBatch<UsageLogsTable>(USAGE_COLUMNS, 100, (db, rows) => db.insertInto("usage_logs").values(rows as never));

/**
 * One batch of usage: the records, and the quota use settled since the last one. Plain data, so it can
 * be handed to the thread that writes it.
 */
export interface UsageBatch {
  /** Unique (a time-ordered id): a batch written again is known by it. */
  id: string;
  records: UsageLogsTable[];
  counters: CounterDelta[];
  /** When the batch was cut (the counters' updated_at). */
  at: string;
}

/**
 * Writes a batch in one transaction: its id, the records, the tokens' last use, the hourly and daily
 * rollups and the quota counters land together or not at all, so rollups, records and counters never
 * disagree. A batch written again after it landed (its answer was lost) finds its id already there and
 * is left as it is. Ids are kept a day (a batch is written again within seconds of its first try) and
 * let go on the way.
 */
export async function writeUsageBatch(db: Kysely<Database>, batch: UsageBatch): Promise<void> {
  const lastUsed = new Map<string, string>();
  for (const row of batch.records) if (row.token_id) lastUsed.set(row.token_id, row.created_at);
  await db.transaction().execute(async (trx) => {
    const claimed = await trx
      .insertInto("usage_batches")
      .values({ id: batch.id, landed_at: batch.at })
      .onConflict((conflict) => conflict.column("id").doNothing())
      .executeTakeFirst();
    if (Number(claimed.numInsertedOrUpdatedRows ?? 0) === 0) return;
    if (batch.records.length > 0) {
      await insertUsage(trx, batch.records);
      await touchTokens(trx, lastUsed);
      await writeUsageRollups(trx, batch.records);
    }
    await addToCounters(trx, batch.counters, batch.at);
    const forgotten = new Date(Date.parse(batch.at) - DAY_MS).toISOString();
    await trx.deleteFrom("usage_batches").where("landed_at", "<", forgotten).execute();
  });
}
