import { ZCreatedToken, ZOk, ZToken, ZTokenInput, ZTokenUpdate } from "@lyss/contracts";
import { z } from "zod";
import { actorOf, requirePrincipal, requireTenant } from "../auth/guard.ts";
import { type Api, AUTHED_ERRORS, errorResponses, ZIdParams } from "../http.ts";
import type { TokenService } from "./service.ts";

const tags = ["tokens"];
const member = { access: { tenant: "member" as const } };

/** Access tokens (API keys) of the active tenant: members manage their own, admins the tenant's. */
export function tokenRoutes(app: Api, tokens: TokenService) {
  app.get(
    "/api/v1/tokens",
    {
      config: member,
      schema: {
        tags,
        summary: "List access tokens (yours, or the tenant's for admins)",
        response: { 200: z.object({ data: z.array(ZToken) }), ...AUTHED_ERRORS },
      },
    },
    async (request) => ({ data: await tokens.list(requireTenant(request), requirePrincipal(request).user.id) }),
  );

  app.post(
    "/api/v1/tokens",
    {
      config: member,
      schema: {
        tags,
        summary: "Create an access token; the key is in this answer only",
        body: ZTokenInput,
        response: { 201: ZCreatedToken, ...AUTHED_ERRORS, ...errorResponses(422) },
      },
    },
    async (request, reply) =>
      reply.code(201).send(await tokens.create(actorOf(request), requireTenant(request), requirePrincipal(request).user.id, request.body)),
  );

  app.get(
    "/api/v1/tokens/:id",
    { config: member, schema: { tags, summary: "Get an access token", params: ZIdParams, response: { 200: ZToken, ...AUTHED_ERRORS } } },
    async (request) => tokens.get(requireTenant(request), requirePrincipal(request).user.id, request.params.id),
  );

  app.patch(
    "/api/v1/tokens/:id",
    {
      config: member,
      schema: {
        tags,
        summary: "Change an access token (takes effect at once)",
        params: ZIdParams,
        body: ZTokenUpdate,
        response: { 200: ZToken, ...AUTHED_ERRORS },
      },
    },
    async (request) =>
      tokens.update(actorOf(request), requireTenant(request), requirePrincipal(request).user.id, request.params.id, request.body),
  );

  app.delete(
    "/api/v1/tokens/:id",
    {
      config: member,
      schema: {
        tags,
        summary: "Delete an access token (takes effect at once)",
        params: ZIdParams,
        response: { 200: ZOk, ...AUTHED_ERRORS },
      },
    },
    async (request) => {
      await tokens.remove(actorOf(request), requireTenant(request), requirePrincipal(request).user.id, request.params.id);
      return { ok: true as const };
    },
  );
}
