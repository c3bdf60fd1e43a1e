import type { Kysely } from "kysely";
import type { Database } from "../../db/schema.ts";

/** Settled quota use of one counter, not yet in the database. */
export interface CounterDelta {
  key: string;
  tenantId: string;
  delta: number;
}

/** Adds settled use to the stored counters (inside the usage batch's transaction). */
export async function addToCounters(trx: Kysely<Database>, counters: readonly CounterDelta[], at: string): Promise<void> {
  for (const { key, tenantId, delta } of counters) {
    await trx
      .insertInto("quota_counters")
      .values({ key, tenant_id: tenantId, used: delta, updated_at: at })
      .onConflict((conflict) =>
        conflict.column("key").doUpdateSet((eb) => ({ used: eb("quota_counters.used", "+", delta), updated_at: at })),
      )
      .execute();
  }
}
