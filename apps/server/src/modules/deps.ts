import type { Kysely } from "kysely";
import type { Database } from "../db/schema.ts";
import type { EventBus } from "../infra/bus.ts";
import type { Clock } from "../infra/clock.ts";
import type { AuditService } from "./audit/service.ts";

/** What a domain service needs: the database, time, the event bus and the audit log. */
export interface ServiceDeps {
  db: Kysely<Database>;
  clock: Clock;
  bus: EventBus;
  audit: AuditService;
}

/** The fields of a PATCH body that were actually given. */
export function definedOnly<T extends object>(patch: T): Partial<T> {
  return Object.fromEntries(Object.entries(patch).filter(([, value]) => value !== undefined)) as Partial<T>;
}
