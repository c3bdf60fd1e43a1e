import type { TAuditLog } from "@lyss/contracts";
import type { Kysely } from "kysely";
import type { AuditLogsTable, Database } from "../../db/schema.ts";
import type { Clock } from "../../infra/clock.ts";
import { newId } from "../../infra/ids.ts";
import { maskSecrets } from "./mask.ts";
import { type AuditFilter, insertAuditLog, listAuditLogs } from "./repository.ts";

/** Who did something, taken from the request that did it. */
export interface Actor {
  userId: string | null;
  email: string | null;
  ip: string | null;
  requestId: string | null;
}

export const SYSTEM_ACTOR: Actor = { userId: null, email: "system", ip: null, requestId: null };

export interface AuditEntry {
  tenantId: string | null;
  action: string;
  targetType: string;
  targetId: string | null;
  before?: unknown;
  after?: unknown;
}

const encode = (value: unknown) => (value === undefined || value === null ? null : JSON.stringify(maskSecrets(value)));
const decode = (value: string | null) => (value === null ? null : (JSON.parse(value) as unknown));

export function toAuditView(row: AuditLogsTable): TAuditLog {
  return { ...row, before: decode(row.before), after: decode(row.after) };
}

export function createAuditService(clock: Clock) {
  return {
    /** Writes an entry with the change it describes: pass the transaction that makes the change. */
    async record(db: Kysely<Database>, actor: Actor, entry: AuditEntry): Promise<void> {
      await insertAuditLog(db, {
        id: newId(),
        tenant_id: entry.tenantId,
        actor_user_id: actor.userId,
        actor_email: actor.email,
        action: entry.action,
        target_type: entry.targetType,
        target_id: entry.targetId,
        ip: actor.ip,
        request_id: actor.requestId,
        before: encode(entry.before),
        after: encode(entry.after),
        created_at: clock.now().toISOString(),
      });
    },

    async list(db: Kysely<Database>, filter: AuditFilter) {
      const rows = await listAuditLogs(db, { ...filter, limit: filter.limit + 1 });
      const page = rows.slice(0, filter.limit);
      const next = rows.length > filter.limit ? (page.at(-1)?.id ?? null) : null;
      return { data: page.map(toAuditView), next_cursor: next };
    },
  };
}

export type AuditService = ReturnType<typeof createAuditService>;
