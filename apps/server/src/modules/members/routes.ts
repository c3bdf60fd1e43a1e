import { ZAddMemberRequest, ZAddMemberResponse, ZInvitation, ZMemberDetail, ZOk, ZUpdateMemberRequest } from "@lyss/contracts";
import { z } from "zod";
import { actorOf, requireTenant } from "../auth/guard.ts";
import { type Api, AUTHED_ERRORS, errorResponses } from "../http.ts";
import type { MemberService } from "./service.ts";

const tags = ["members"];
const ZUserParams = z.strictObject({ userId: z.string().min(1).max(64) });
const ZInvitationParams = z.strictObject({ id: z.string().min(1).max(64) });
const admin = { access: { tenant: "admin" as const } };

/** Members of the active tenant (the `X-Tenant-Id` header, else your first tenant). */
export function memberRoutes(app: Api, members: MemberService) {
  app.get(
    "/api/v1/members",
    {
      config: { access: { tenant: "member" } },
      schema: {
        tags,
        summary: "List the active tenant's members, with their quota limits and use",
        response: { 200: z.object({ data: z.array(ZMemberDetail) }), ...AUTHED_ERRORS },
      },
    },
    async (request) => ({ data: await members.list(requireTenant(request).tenant.id) }),
  );

  app.post(
    "/api/v1/members",
    {
      config: admin,
      schema: {
        tags,
        summary: "Add a user by email, or invite the email when no account has it",
        description: "Only owners grant the owner role. An invitation's token is shown once; pass it to /api/v1/auth/accept-invite.",
        body: ZAddMemberRequest,
        response: { 201: ZAddMemberResponse, ...AUTHED_ERRORS, ...errorResponses(409) },
      },
    },
    async (request, reply) => reply.code(201).send(await members.add(actorOf(request), requireTenant(request), request.body)),
  );

  app.patch(
    "/api/v1/members/:userId",
    {
      config: admin,
      schema: {
        tags,
        summary: "Change a member's role or quota limits",
        params: ZUserParams,
        body: ZUpdateMemberRequest,
        response: { 200: ZMemberDetail, ...AUTHED_ERRORS, ...errorResponses(422) },
      },
    },
    async (request) => members.update(actorOf(request), requireTenant(request), request.params.userId, request.body),
  );

  app.delete(
    "/api/v1/members/:userId",
    {
      config: admin,
      schema: { tags, summary: "Remove a member", params: ZUserParams, response: { 200: ZOk, ...AUTHED_ERRORS, ...errorResponses(422) } },
    },
    async (request) => {
      await members.remove(actorOf(request), requireTenant(request), request.params.userId);
      return { ok: true as const };
    },
  );

  app.get(
    "/api/v1/invitations",
    {
      config: admin,
      schema: {
        tags,
        summary: "Pending invitations of the active tenant",
        response: { 200: z.object({ data: z.array(ZInvitation) }), ...AUTHED_ERRORS },
      },
    },
    async (request) => ({ data: await members.invitations(requireTenant(request).tenant.id) }),
  );

  app.delete(
    "/api/v1/invitations/:id",
    {
      config: admin,
      schema: { tags, summary: "Revoke an invitation", params: ZInvitationParams, response: { 200: ZOk, ...AUTHED_ERRORS } },
    },
    async (request) => {
      await members.revokeInvitation(actorOf(request), requireTenant(request).tenant.id, request.params.id);
      return { ok: true as const };
    },
  );
}
