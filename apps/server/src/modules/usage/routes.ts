import { ZPage, ZUsageLog, ZUsageQuery } from "@lyss/contracts";
import type { Kysely } from "kysely";
import type { Database, UsageLogsTable } from "../../db/schema.ts";
import { requirePrincipal, requireTenant, roleAtLeast } from "../auth/guard.ts";
import { type Api, AUTHED_ERRORS } from "../http.ts";

const toView = (row: UsageLogsTable) => ({ ...row, stream: row.stream === 1 });

/** Usage records of the active tenant: members see their own, admins everyone's. */
export function usageRoutes(app: Api, db: Kysely<Database>) {
  app.get(
    "/api/v1/usage/logs",
    {
      config: { access: { tenant: "member" } },
      schema: {
        tags: ["usage"],
        summary: "Usage records, newest first, filtered by model, token, channel, user, status and time",
        querystring: ZUsageQuery,
        response: { 200: ZPage(ZUsageLog), ...AUTHED_ERRORS },
      },
    },
    async (request) => {
      const context = requireTenant(request);
      const query = request.query;
      const userId = roleAtLeast(context.role, "admin") ? query.user_id : requirePrincipal(request).user.id;
      let select = db.selectFrom("usage_logs").selectAll().where("tenant_id", "=", context.tenant.id);
      if (userId) select = select.where("user_id", "=", userId);
      if (query.model) select = select.where("requested_model", "=", query.model);
      if (query.token_id) select = select.where("token_id", "=", query.token_id);
      if (query.channel_id) select = select.where("channel_id", "=", query.channel_id);
      if (query.status === "success") select = select.where("status_code", "<", 400);
      if (query.status === "error") select = select.where("status_code", ">=", 400);
      if (query.from) select = select.where("created_at", ">=", query.from);
      if (query.to) select = select.where("created_at", "<", query.to);
      if (query.cursor) select = select.where("id", "<", query.cursor);
      const rows = await select
        .orderBy("id", "desc")
        .limit(query.limit + 1)
        .execute();
      const page = rows.slice(0, query.limit);
      return { data: page.map(toView), next_cursor: rows.length > query.limit ? (page.at(-1)?.id ?? null) : null };
    },
  );
}
