import type { Logger } from "pino";
import type { UsageLogsTable } from "../../db/schema.ts";
import { type Clock, isoNow } from "../../infra/clock.ts";
import { newId } from "../../infra/ids.ts";
import type { CounterDelta } from "../quota/counters.ts";
import type { BatchSink } from "./batch-sink.ts";
import { BatchPacker, type PackedBatch } from "./batch-wire.ts";

export type UsageRecord = Omit<UsageLogsTable, "id">;

/** Quota use settled in memory, written with the next batch. */
export interface SettledCounters {
  takeSettled(): CounterDelta[];
}

/**
 * Records a batch holds at most before it is written without waiting for the timer. Each batch costs
 * the writer about 0.7 ms besides its records (the transaction, its id, the tokens' last use, the
 * rollups, the counters, and the pages at the end of each index written to the log again at every
 * commit): SQLite, batches written in a loop, 6.2 µs a record at 500 a batch (1.3 of them the batch's
 * share), 5.5 µs at 2,000. Records wait packed (about 250 bytes each: 500 KB for a full batch), so a
 * larger batch costs little memory; below 2,000 calls a second the timer cuts the batches anyway.
 */
const BATCH_SIZE = 2000;

/**
 * Usage records are buffered in memory and written in batches, off the request path: every
 * `intervalMs`, when `batchSize` records wait, and on shutdown; each batch also carries the quota use
 * settled since the last one. The sink writes a batch in one transaction (on SQLite, on a thread of its
 * own). A batch that fails is kept as it is and written again, before anything newer, at each flush
 * until it lands: a database hiccup loses nothing, and a batch that did land but whose answer was lost
 * (its thread or connection died in between) is recognised as landed instead of counted twice.
 */
export function createUsageRecorder(
  sink: BatchSink,
  deps: { logger: Logger; counters: SettledCounters; clock: Clock },
  options: { intervalMs?: number; batchSize?: number } = {},
) {
  const { logger, counters: settled, clock } = deps;
  const batchSize = options.batchSize ?? BATCH_SIZE;
  // The records waiting for the next batch, packed as they come (objects held this long cost the collector).
  const pending = new BatchPacker();
  let failed: PackedBatch | undefined;
  let flushing: Promise<void> | undefined;
  const listeners = new Set<(record: UsageRecord) => void>();

  /** Writes a batch; answers whether it landed. */
  async function write(batch: PackedBatch): Promise<boolean> {
    try {
      await sink.write(batch);
      return true;
    } catch (error) {
      logger.error({ err: error, records: batch.count }, "usage batch failed; kept for the next flush");
      return false;
    }
  }

  async function flush(): Promise<void> {
    // One flush at a time: callers that waited together do not write the same batch side by side.
    while (flushing) await flushing;
    flushing = (async () => {
      if (failed) {
        if (!(await write(failed))) return;
        failed = undefined;
      }
      const counters = settled.takeSettled();
      if (pending.count === 0 && counters.length === 0) return;
      const batch = pending.take(newId(), isoNow(clock), counters);
      if (!(await write(batch))) failed = batch;
    })().finally(() => {
      flushing = undefined;
    });
    await flushing;
  }

  const timer = setInterval(() => void flush(), options.intervalMs ?? 1000);
  timer.unref();

  return {
    /** Queues one record (packed, with a fresh id: the object is not kept). */
    record(record: UsageRecord) {
      pending.add(record);
      for (const listener of listeners) listener(record);
      // After a failure the timer retries: not every record while the database is away.
      if (pending.count >= batchSize && !failed) void flush();
    },
    /** Observers of each record as it is made (metrics, live views). */
    onRecord(listener: (record: UsageRecord) => void) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    flush,
    async close() {
      clearInterval(timer);
      await flush();
      await sink.close();
    },
  };
}

export type UsageRecorder = ReturnType<typeof createUsageRecorder>;
