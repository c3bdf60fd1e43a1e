import { ZAuditLog, ZAuditQuery, ZPage, ZPlatformAuditQuery } from "@lyss/contracts";
import type { Kysely } from "kysely";
import type { Database } from "../../db/schema.ts";
import { requireTenant } from "../auth/guard.ts";
import { type Api, AUTHED_ERRORS } from "../http.ts";
import type { AuditService } from "./service.ts";

const tags = ["audit"];

type Query = {
  limit: number;
  cursor?: string | undefined;
  action?: string | undefined;
  actor_user_id?: string | undefined;
  target_type?: string | undefined;
  target_id?: string | undefined;
  from?: string | undefined;
  to?: string | undefined;
};

const filterOf = (query: Query) => ({
  action: query.action,
  actorUserId: query.actor_user_id,
  targetType: query.target_type,
  targetId: query.target_id,
  from: query.from,
  to: query.to,
  beforeId: query.cursor,
  limit: query.limit,
});

export function auditRoutes(app: Api, audit: AuditService, db: Kysely<Database>) {
  app.get(
    "/api/v1/audit-logs",
    {
      config: { access: { tenant: "admin" } },
      schema: {
        tags,
        summary: "The active tenant's audit log, newest first",
        querystring: ZAuditQuery,
        response: { 200: ZPage(ZAuditLog), ...AUTHED_ERRORS },
      },
    },
    async (request) => audit.list(db, { ...filterOf(request.query), tenantId: requireTenant(request).tenant.id }),
  );

  app.get(
    "/api/v1/platform/audit-logs",
    {
      config: { access: "platform_admin" },
      schema: {
        tags,
        summary: "Every audit entry (platform administrators); filter by tenant_id",
        querystring: ZPlatformAuditQuery,
        response: { 200: ZPage(ZAuditLog), ...AUTHED_ERRORS },
      },
    },
    async (request) => audit.list(db, { ...filterOf(request.query), tenantId: request.query.tenant_id }),
  );
}
