import type { Kysely } from "kysely";
import { compiledBatch } from "../../db/compiled-batch.ts";
import type { Database, UsageLogsTable } from "../../db/schema.ts";
import { addToCounters, type CounterDelta } from "../quota/counters.ts";
import { touchTokens } from "../tokens/repository.ts";
import { writeUsageRollups } from "./rollups.ts";

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

/**
 * One batch of usage: the records, and the quota use settled since the last batch. Plain data, so it
 * can be handed to the thread that writes it.
 */
export interface UsageBatch {
  records: UsageLogsTable[];
  counters: CounterDelta[];
  /** When the batch was cut (the counters' updated_at). */
  at: string;
}

/**
 * Writes a batch in one transaction: the records, the tokens' last use, the hourly and daily rollups
 * and the quota counters land together or not at all, so rollups, records and counters never disagree.
 * A batch written again after it landed (its answer was lost) is found by its first record and left
 * as it is. (A batch of counters alone has no record to be found by: the recorder sends one only
 * when use was settled after its records had gone, and it would count twice only if the thread or
 * connection died between its commit and its answer.)
 */
export async function writeUsageBatch(db: Kysely<Database>, batch: UsageBatch): Promise<void> {
  const lastUsed = new Map<string, string>();
  for (const row of batch.records) if (row.token_id) lastUsed.set(row.token_id, row.created_at);
  await db.transaction().execute(async (trx) => {
    const first = batch.records[0];
    if (first) {
      const landed = await trx.selectFrom("usage_logs").select("id").where("id", "=", first.id).executeTakeFirst();
      if (landed) return;
      await insertUsage(trx, batch.records);
      await touchTokens(trx, lastUsed);
      await writeUsageRollups(trx, batch.records);
    }
    await addToCounters(trx, batch.counters, batch.at);
  });
}
