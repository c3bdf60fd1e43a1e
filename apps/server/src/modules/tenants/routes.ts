import { ZCreateTenantRequest, ZOk, ZPage, ZPageQuery, ZTenant, ZTenantDetail, ZUpdateTenantRequest } from "@lyss/contracts";
import { forbidden, notFound } from "../../errors/app-error.ts";
import { actorOf, requirePrincipal } from "../auth/guard.ts";
import type { PrincipalCache } from "../auth/principal-cache.ts";
import { type Api, AUTHED_ERRORS, errorResponses, ZIdParams } from "../http.ts";
import type { QuotaService } from "../quota/service.ts";
import type { TenantService } from "./service.ts";

const tags = ["tenants"];

export function tenantRoutes(app: Api, tenants: TenantService, cache: PrincipalCache, quota: QuotaService) {
  /** A platform administrator sees every tenant; anyone else only the tenants they belong to. */
  async function roleIn(request: Parameters<typeof requirePrincipal>[0], tenantId: string) {
    const principal = requirePrincipal(request);
    if (principal.user.is_platform_admin === 1) return "owner";
    const membership = (await cache.memberships(principal.user.id)).find((item) => item.tenant.id === tenantId);
    if (!membership) throw notFound("tenant");
    return membership.role;
  }

  app.get(
    "/api/v1/tenants",
    {
      config: { access: "user" },
      schema: {
        tags,
        summary: "List tenants (all for platform administrators, else your own)",
        querystring: ZPageQuery,
        response: { 200: ZPage(ZTenant), ...AUTHED_ERRORS },
      },
    },
    async (request) => {
      const principal = requirePrincipal(request);
      const memberUserId = principal.user.is_platform_admin === 1 ? undefined : principal.user.id;
      return tenants.list({ memberUserId, cursor: request.query.cursor, limit: request.query.limit });
    },
  );

  app.post(
    "/api/v1/tenants",
    {
      config: { access: "platform_admin" },
      schema: {
        tags,
        summary: "Create a tenant (platform administrators)",
        description: "The owner is `owner_email`'s user when given, else the caller.",
        body: ZCreateTenantRequest,
        response: { 201: ZTenant, ...AUTHED_ERRORS, ...errorResponses(409, 422) },
      },
    },
    async (request, reply) => reply.code(201).send(await tenants.create(actorOf(request), request.body)),
  );

  app.get(
    "/api/v1/tenants/:id",
    {
      config: { access: "user" },
      schema: {
        tags,
        summary: "Get a tenant, with its quota limits and their use",
        params: ZIdParams,
        response: { 200: ZTenantDetail, ...AUTHED_ERRORS },
      },
    },
    async (request) => {
      await roleIn(request, request.params.id);
      const tenant = await tenants.get(request.params.id);
      return { ...tenant, limits: await quota.status("tenant", tenant.id, tenant.id, tenant.limits) };
    },
  );

  app.patch(
    "/api/v1/tenants/:id",
    {
      config: { access: "user" },
      schema: {
        tags,
        summary: "Rename a tenant (its owners) or suspend it (platform administrators)",
        params: ZIdParams,
        body: ZUpdateTenantRequest,
        response: { 200: ZTenant, ...AUTHED_ERRORS },
      },
    },
    async (request) => {
      const role = await roleIn(request, request.params.id);
      const principal = requirePrincipal(request);
      if (role !== "owner") throw forbidden("requires the owner role");
      if ((request.body.status !== undefined || request.body.limits !== undefined) && principal.user.is_platform_admin !== 1) {
        throw forbidden("only platform administrators change a tenant's status or limits");
      }
      return tenants.update(actorOf(request), request.params.id, request.body);
    },
  );

  app.delete(
    "/api/v1/tenants/:id",
    {
      config: { access: "platform_admin" },
      schema: { tags, summary: "Delete a tenant and everything in it", params: ZIdParams, response: { 200: ZOk, ...AUTHED_ERRORS } },
    },
    async (request) => {
      await tenants.remove(actorOf(request), request.params.id);
      return { ok: true as const };
    },
  );
}
