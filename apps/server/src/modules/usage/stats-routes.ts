import { ZUsageTimeseries, ZUsageTimeseriesQuery, ZUsageTop, ZUsageTopQuery } from "@lyss/contracts";
import type { FastifyRequest } from "fastify";
import type { Kysely } from "kysely";
import type { Database } from "../../db/schema.ts";
import { AppError, forbidden } from "../../errors/app-error.ts";
import { requirePrincipal, requireTenant, roleAtLeast } from "../auth/guard.ts";
import { type Api, AUTHED_ERRORS } from "../http.ts";
import { DAY_MS } from "./rollups.ts";
import { usageTimeseries, usageTop } from "./stats.ts";

const tags = ["usage"];
const OWN_ONLY = "members see only their own usage (dimension user, their own id)";

/** The active tenant, the caller, and whether the caller sees the whole tenant (admins) or only themselves. */
function scopeOf(request: FastifyRequest) {
  const context = requireTenant(request);
  return { tenantId: context.tenant.id, userId: requirePrincipal(request).user.id, admin: roleAtLeast(context.role, "admin") };
}

function rangeOf(query: { from?: string | undefined; to?: string | undefined }, now: Date, defaultSpanMs: number) {
  const to = query.to ? new Date(query.to) : now;
  const from = query.from ? new Date(query.from) : new Date(to.getTime() - defaultSpanMs);
  return { from, to };
}

/**
 * Usage statistics of the active tenant from the rollups (never from raw records): admins see the whole
 * tenant, members their own user dimension only.
 */
export function usageStatsRoutes(app: Api, db: Kysely<Database>, now: () => Date) {
  app.get(
    "/api/v1/usage/timeseries",
    {
      config: { access: { tenant: "member" } },
      schema: {
        tags,
        summary: "Usage per hour or UTC day of the tenant, or of one user, token, model or channel",
        querystring: ZUsageTimeseriesQuery,
        response: { 200: ZUsageTimeseries, ...AUTHED_ERRORS },
      },
    },
    async (request) => {
      const scope = scopeOf(request);
      const query = request.query;
      const dimension = query.dimension ?? (scope.admin ? "tenant" : "user");
      const value = dimension === "tenant" ? scope.tenantId : (query.value ?? (dimension === "user" ? scope.userId : undefined));
      if (!scope.admin && (dimension !== "user" || value !== scope.userId)) throw forbidden(OWN_ONLY);
      if (value === undefined) throw new AppError("bad_request", `value is required for dimension ${dimension}`);
      const range = rangeOf(query, now(), query.period === "hour" ? DAY_MS : 30 * DAY_MS);
      return usageTimeseries(db, scope.tenantId, { period: query.period, dimension, value, ...range });
    },
  );

  app.get(
    "/api/v1/usage/top",
    {
      config: { access: { tenant: "member" } },
      schema: {
        tags,
        summary: "The models, tokens, users or channels with the most requests, tokens or cost over a range",
        querystring: ZUsageTopQuery,
        response: { 200: ZUsageTop, ...AUTHED_ERRORS },
      },
    },
    async (request) => {
      const scope = scopeOf(request);
      const query = request.query;
      if (!scope.admin && query.dimension !== "user") throw forbidden(OWN_ONLY);
      const range = rangeOf(query, now(), 30 * DAY_MS);
      return usageTop(db, scope.tenantId, {
        dimension: query.dimension,
        metric: query.metric,
        limit: query.limit,
        onlyValue: scope.admin ? undefined : scope.userId,
        ...range,
      });
    },
  );
}
