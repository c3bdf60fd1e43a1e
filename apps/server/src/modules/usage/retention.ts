import type { Kysely } from "kysely";
import type { Logger } from "pino";
import type { Database } from "../../db/schema.ts";
import { type Clock, isoString } from "../../infra/clock.ts";
import type { SettingsService } from "../settings/service.ts";
import { DAY_MS } from "./rollups.ts";

export interface UsageRetentionOptions {
  db: Kysely<Database>;
  settings: Pick<SettingsService, "platform">;
  clock: Clock;
  logger: Logger;
  /** How often the job runs (default hourly); the first run comes `firstRunMs` after start (default a minute). */
  intervalMs?: number;
  firstRunMs?: number;
  /** Rows per delete statement, and statements per run: each run is bounded, the next one continues. */
  batchSize?: number;
  maxBatches?: number;
}

export interface RetentionRun {
  /** Records older than this were deleted; null when retention is off (0 days). */
  cutoff: string | null;
  deleted: number;
  /** Whether old records remain because the run hit `maxBatches`. */
  more: boolean;
}

const pause = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Deletes raw usage records older than the platform's `usage_retention_days`, in bounded batches so no
 * statement holds the database for long. The hourly and daily rollups are kept: statistics outlive the
 * records they were summed from. Every instance may run it; deletes are idempotent.
 */
export function createUsageRetention(options: UsageRetentionOptions) {
  const { db, settings, clock, logger } = options;
  const batchSize = options.batchSize ?? 5000;
  const maxBatches = options.maxBatches ?? 200;
  let running: Promise<RetentionRun> | undefined;
  let timers: NodeJS.Timeout[] = [];
  /** Set while stopping: a run under way ends after its current batch, so shutdown does not wait for it. */
  let stopping = false;

  async function run(): Promise<RetentionRun> {
    const days = Number((await settings.platform()).values.usage_retention_days ?? 0);
    if (!(days > 0)) return { cutoff: null, deleted: 0, more: false };
    const cutoff = isoString(clock.ms() - days * DAY_MS);
    let deleted = 0;
    for (let batch = 0; batch < maxBatches && !stopping; batch += 1) {
      const result = await db
        .deleteFrom("usage_logs")
        .where("id", "in", (eb) => eb.selectFrom("usage_logs").select("id").where("created_at", "<", cutoff).limit(batchSize))
        .executeTakeFirst();
      const count = Number(result.numDeletedRows);
      deleted += count;
      if (count < batchSize) return { cutoff, deleted, more: false };
      // Let requests in between batches (SQLite's driver is synchronous).
      await pause();
    }
    return { cutoff, deleted, more: true };
  }

  /** One run now; a run already under way is joined rather than doubled. */
  function runOnce(): Promise<RetentionRun> {
    running ??= run()
      .then((outcome) => {
        if (outcome.deleted > 0) logger.info(outcome, "deleted usage records past retention");
        return outcome;
      })
      .finally(() => {
        running = undefined;
      });
    return running;
  }

  const tick = () =>
    void runOnce().catch((error: Error) => {
      logger.error({ err: error }, "usage retention run failed; trying again on the next tick");
    });

  return {
    runOnce,
    start() {
      if (timers.length > 0) return;
      const first = setTimeout(tick, options.firstRunMs ?? 60_000);
      const every = setInterval(tick, options.intervalMs ?? 3_600_000);
      first.unref();
      every.unref();
      timers = [first, every];
    },
    /** Stops the timers and waits for a run under way to finish its current batch. */
    async stop() {
      for (const timer of timers) clearTimeout(timer);
      timers = [];
      stopping = true;
      await running?.catch(() => undefined);
      stopping = false;
    },
  };
}

export type UsageRetention = ReturnType<typeof createUsageRetention>;
