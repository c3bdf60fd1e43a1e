import { ZCreateUserRequest, ZOk, ZPage, ZPageQuery, ZResetPasswordRequest, ZUpdateUserRequest, ZUser } from "@lyss/contracts";
import { z } from "zod";
import { actorOf } from "../auth/guard.ts";
import { type Api, AUTHED_ERRORS, errorResponses, ZIdParams } from "../http.ts";
import type { UserService } from "./service.ts";

const tags = ["users"];
const config = { access: "platform_admin" as const };

export function userRoutes(app: Api, users: UserService) {
  app.get(
    "/api/v1/users",
    {
      config,
      schema: {
        tags,
        summary: "List users (platform administrators)",
        querystring: ZPageQuery.extend({ q: z.string().max(200).optional() }),
        response: { 200: ZPage(ZUser), ...AUTHED_ERRORS },
      },
    },
    async (request) => users.list({ search: request.query.q, cursor: request.query.cursor, limit: request.query.limit }),
  );

  app.post(
    "/api/v1/users",
    {
      config,
      schema: {
        tags,
        summary: "Create a user",
        body: ZCreateUserRequest,
        response: { 201: ZUser, ...AUTHED_ERRORS, ...errorResponses(409) },
      },
    },
    async (request, reply) => reply.code(201).send(await users.create(actorOf(request), request.body)),
  );

  app.get(
    "/api/v1/users/:id",
    { config, schema: { tags, summary: "Get a user", params: ZIdParams, response: { 200: ZUser, ...AUTHED_ERRORS } } },
    async (request) => users.get(request.params.id),
  );

  app.patch(
    "/api/v1/users/:id",
    {
      config,
      schema: {
        tags,
        summary: "Rename, disable or enable a user, or grant or revoke platform administration",
        description: "Disabling a user ends their sessions and access tokens at once.",
        params: ZIdParams,
        body: ZUpdateUserRequest,
        response: { 200: ZUser, ...AUTHED_ERRORS, ...errorResponses(422) },
      },
    },
    async (request) => users.update(actorOf(request), request.params.id, request.body),
  );

  app.delete(
    "/api/v1/users/:id",
    {
      config,
      schema: { tags, summary: "Delete a user", params: ZIdParams, response: { 200: ZOk, ...AUTHED_ERRORS, ...errorResponses(422) } },
    },
    async (request) => {
      await users.remove(actorOf(request), request.params.id);
      return { ok: true as const };
    },
  );

  app.post(
    "/api/v1/users/:id/reset-password",
    {
      config,
      schema: {
        tags,
        summary: "Set a user's password (their sessions end)",
        params: ZIdParams,
        body: ZResetPasswordRequest,
        response: { 200: ZOk, ...AUTHED_ERRORS },
      },
    },
    async (request) => {
      await users.resetPassword(actorOf(request), request.params.id, request.body.password);
      return { ok: true as const };
    },
  );
}
