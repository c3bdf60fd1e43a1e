import type { TTenantRole } from "@lyss/contracts";
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { TenantsTable } from "../../db/schema.ts";
import { AppError, forbidden, notFound, unauthorized } from "../../errors/app-error.ts";
import type { Limiter } from "../../infra/rate-limiter.ts";
import type { Actor } from "../audit/service.ts";
import type { UserRow } from "../users/repository.ts";
import type { AccessTokens } from "./jwt.ts";
import type { PrincipalCache } from "./principal-cache.ts";

/** Who may call a route: anyone, any signed-in user, platform administrators, or a tenant role and up. */
export type Access = "public" | "user" | "platform_admin" | { tenant: TTenantRole };

export interface Principal {
  user: UserRow;
  sessionId: string;
}

export interface TenantContext {
  tenant: TenantsTable;
  /** The caller's role; platform administrators act as owners of every tenant. */
  role: TTenantRole;
}

declare module "fastify" {
  interface FastifyContextConfig {
    access?: Access;
    /** Count calls per client address (for unauthenticated routes other than login). */
    limitByIp?: boolean;
  }
  interface FastifyRequest {
    principal: Principal | null;
    tenantContext: TenantContext | null;
  }
}

export const TENANT_HEADER = "x-tenant-id";
const RANK: Record<TTenantRole, number> = { member: 1, admin: 2, owner: 3 };

export const roleAtLeast = (role: TTenantRole, minimum: TTenantRole) => RANK[role] >= RANK[minimum];

export function actorOf(request: FastifyRequest): Actor {
  return {
    userId: request.principal?.user.id ?? null,
    email: request.principal?.user.email ?? null,
    ip: request.ip ?? null,
    requestId: request.id,
  };
}

export function requirePrincipal(request: FastifyRequest): Principal {
  if (!request.principal) throw unauthorized();
  return request.principal;
}

export function requireTenant(request: FastifyRequest): TenantContext {
  if (!request.tenantContext) throw new AppError("bad_request", `choose a tenant with the ${TENANT_HEADER} header`);
  return request.tenantContext;
}

function bearer(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (!header) return undefined;
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  return match?.[1];
}

async function authenticate(request: FastifyRequest, tokens: AccessTokens, cache: PrincipalCache, now: () => Date) {
  const token = bearer(request);
  if (!token) throw unauthorized("missing bearer token");
  const claims = await tokens.verify(token);
  if ("invalid" in claims) throw unauthorized(claims.invalid);
  const user = await cache.user(claims.userId);
  if (!user || user.token_version !== claims.tokenVersion) throw unauthorized("access token revoked");
  if (user.status !== "active") throw unauthorized("account disabled");
  const session = await cache.session(claims.sessionId);
  if (!session || session.revoked || session.userId !== user.id || session.expiresAt <= now().toISOString()) {
    throw unauthorized("session ended");
  }
  return { user, sessionId: claims.sessionId };
}

async function resolveTenant(request: FastifyRequest, principal: Principal, cache: PrincipalCache) {
  const header = request.headers[TENANT_HEADER];
  const requested = Array.isArray(header) ? header[0] : header;
  const memberships = await cache.memberships(principal.user.id);
  const membership = requested ? memberships.find((item) => item.tenant.id === requested) : memberships[0];
  if (membership) return { tenant: membership.tenant, role: membership.role };
  if (requested && principal.user.is_platform_admin === 1) {
    const tenant = await cache.tenant(requested);
    if (tenant) return { tenant, role: "owner" as const };
  }
  if (requested) throw notFound("tenant");
  return null;
}

/** Management routes need a signed-in user unless they say otherwise; other routes guard themselves. */
const defaultAccess = (url: string | undefined): Access => (url?.startsWith("/api/") ? "user" : "public");

/** Checks every request against its route's `config.access` before the body is even parsed. */
export function registerGuard(app: FastifyInstance, tokens: AccessTokens, cache: PrincipalCache, now: () => Date, perIp: Limiter) {
  app.decorateRequest("principal", null);
  app.decorateRequest("tenantContext", null);

  async function check(request: FastifyRequest, access: Access) {
    if (request.routeOptions.config.limitByIp) {
      const wait = await perIp.hit(request.ip);
      if (wait > 0) {
        throw new AppError(
          "rate_limited",
          "too many requests from this address; try again later",
          { retry_after: wait },
          { "retry-after": String(wait) },
        );
      }
    }
    if (access === "public") return;
    const principal = await authenticate(request, tokens, cache, now);
    request.principal = principal;
    if (access === "platform_admin" && principal.user.is_platform_admin !== 1) {
      throw forbidden("platform administrators only");
    }
    const context = await resolveTenant(request, principal, cache);
    request.tenantContext = context;
    if (typeof access === "object") {
      if (!context) requireTenant(request);
      else {
        if (context.tenant.status !== "active" && principal.user.is_platform_admin !== 1) {
          throw forbidden("this tenant is suspended");
        }
        if (!roleAtLeast(context.role, access.tenant)) throw forbidden(`requires the ${access.tenant} role`);
      }
    }
  }

  // Callback style: a public route without a per-address limit (the whole data plane, which checks its
  // own API keys) passes through without a promise.
  app.addHook("onRequest", (request, _reply, done) => {
    if (request.is404) return done();
    const config = request.routeOptions.config;
    const access = config.access ?? defaultAccess(request.routeOptions.url);
    if (access === "public" && !config.limitByIp) return done();
    check(request, access).then(() => done(), done);
  });
}
