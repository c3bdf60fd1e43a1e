import {
  ZAcceptInviteRequest,
  ZAuthResponse,
  ZChangePasswordRequest,
  ZDisplayName,
  ZLoginRequest,
  ZLogoutRequest,
  ZMeResponse,
  ZOk,
  ZRefreshRequest,
  ZSetupRequest,
  ZSetupResponse,
  ZTenantRole,
  ZTokenPair,
  ZUser,
} from "@lyss/contracts";
import { z } from "zod";
import { type Api, AUTHED_ERRORS, clientInfo, errorResponses } from "../http.ts";
import type { MemberService } from "../members/service.ts";
import { toTenantView } from "../tenants/repository.ts";
import { toUserView } from "../users/repository.ts";
import { actorOf, requirePrincipal } from "./guard.ts";
import type { PrincipalCache } from "./principal-cache.ts";
import type { AuthService } from "./service.ts";

const tags = ["auth"];

export function authRoutes(app: Api, auth: AuthService, members: MemberService, cache: PrincipalCache) {
  app.post(
    "/api/v1/auth/setup",
    {
      config: { access: "public", limitByIp: true },
      schema: {
        tags,
        summary: "First-run setup: create the platform administrator and the first tenant",
        description: "Works only while no user exists; afterwards it answers 409 setup_completed.",
        body: ZSetupRequest,
        response: { 201: ZSetupResponse, ...errorResponses(400, 409, 413, 415) },
      },
    },
    async (request, reply) => reply.code(201).send(await auth.setup(actorOf(request), request.body, clientInfo(request))),
  );

  app.get(
    "/api/v1/auth/setup",
    {
      config: { access: "public" },
      schema: { tags, summary: "Whether first-run setup is still open", response: { 200: z.object({ setup_required: z.boolean() }) } },
    },
    async () => ({ setup_required: !(await auth.isSetUp()) }),
  );

  app.post(
    "/api/v1/auth/login",
    {
      config: { access: "public" },
      schema: {
        tags,
        summary: "Sign in with email and password",
        description: "Failed attempts are limited per account and per IP address; past the limit the answer is 429 with Retry-After.",
        body: ZLoginRequest,
        response: { 200: ZAuthResponse, ...errorResponses(400, 401, 403, 413, 415, 429) },
      },
    },
    async (request) => auth.login(request.body, clientInfo(request)),
  );

  app.post(
    "/api/v1/auth/refresh",
    {
      config: { access: "public", limitByIp: true },
      schema: {
        tags,
        summary: "Exchange a refresh token for a new pair (the old refresh token stops working)",
        body: ZRefreshRequest,
        response: { 200: ZTokenPair, ...errorResponses(400, 401, 413, 415) },
      },
    },
    async (request) => auth.refresh(request.body.refresh_token),
  );

  app.post(
    "/api/v1/auth/logout",
    {
      config: { access: "user" },
      schema: { tags, summary: "End the current session", body: ZLogoutRequest.nullish(), response: { 200: ZOk, ...AUTHED_ERRORS } },
    },
    async (request) => {
      const principal = requirePrincipal(request);
      await auth.logout(principal.user.id, principal.sessionId, request.body?.refresh_token);
      return { ok: true as const };
    },
  );

  app.get(
    "/api/v1/auth/me",
    {
      config: { access: "user" },
      schema: { tags, summary: "The signed-in user, their tenants and roles", response: { 200: ZMeResponse, ...AUTHED_ERRORS } },
    },
    async (request) => {
      const principal = requirePrincipal(request);
      const memberships = await cache.memberships(principal.user.id);
      return {
        user: toUserView(principal.user),
        memberships: memberships.map((item) => ({ tenant: toTenantView(item.tenant), role: ZTenantRole.parse(item.role) })),
        active_tenant_id: request.tenantContext?.tenant.id ?? null,
      };
    },
  );

  app.patch(
    "/api/v1/auth/me",
    {
      config: { access: "user" },
      schema: {
        tags,
        summary: "Update your own profile",
        body: z.strictObject({ name: ZDisplayName }),
        response: { 200: ZUser, ...AUTHED_ERRORS },
      },
    },
    async (request) => auth.updateProfile(actorOf(request), requirePrincipal(request).user, request.body),
  );

  app.post(
    "/api/v1/auth/password",
    {
      config: { access: "user" },
      schema: {
        tags,
        summary: "Change your own password (your other sessions end)",
        body: ZChangePasswordRequest,
        response: { 200: ZOk, ...AUTHED_ERRORS },
      },
    },
    async (request) => {
      const principal = requirePrincipal(request);
      await auth.changePassword(actorOf(request), principal.user, principal.sessionId, request.body);
      return { ok: true as const };
    },
  );

  app.post(
    "/api/v1/auth/accept-invite",
    {
      config: { access: "public", limitByIp: true },
      schema: {
        tags,
        summary: "Accept a tenant invitation, creating the account when the email has none",
        body: ZAcceptInviteRequest,
        response: {
          200: z.object({ user: ZUser, tenant_id: z.string(), role: ZTenantRole }),
          ...errorResponses(400, 404, 409, 413, 415),
        },
      },
    },
    async (request) => members.accept(actorOf(request), request.body),
  );
}
