import type { TMember, TTenantRole } from "@lyss/contracts";
import type { InvitationsTable } from "../../db/schema.ts";
import { AppError, conflict, forbidden, notFound } from "../../errors/app-error.ts";
import { isoIn } from "../../infra/clock.ts";
import { hashToken, randomToken } from "../../infra/crypto.ts";
import { newId } from "../../infra/ids.ts";
import type { Actor } from "../audit/service.ts";
import type { TenantContext } from "../auth/guard.ts";
import { AUTH_TOPICS } from "../auth/principal-cache.ts";
import type { ServiceDeps } from "../deps.ts";
import type { QuotaService } from "../quota/service.ts";
import { type Limit, parseLimits } from "../tokens/token-cache.ts";
import { findUserByEmail, toUserView } from "../users/repository.ts";
import type { UserService } from "../users/service.ts";
import {
  countOwners,
  deleteInvitation,
  deleteMembership,
  findInvitationByTokenHash,
  findMember,
  insertInvitation,
  insertMembership,
  listInvitations,
  listMembers,
  markInvitationAccepted,
  membershipLimits,
  updateMembershipLimits,
  updateMembershipRole,
} from "./repository.ts";

const INVITATION_TTL_SECONDS = 7 * 24 * 3600;

const toInvitationView = ({ token_hash: _hash, tenant_id: _tenant, invited_by: _by, ...rest }: InvitationsTable) => rest;

/** Only owners grant or take away the owner role. */
function assertMayAssign(context: TenantContext, role: TTenantRole) {
  if (role === "owner" && context.role !== "owner") throw forbidden("only owners grant the owner role");
}

export function createMemberService(deps: ServiceDeps, users: UserService, quota: QuotaService) {
  const { db, clock, bus, audit } = deps;

  return {
    /** The tenant's members, each with their own quota limits and what is used of them. */
    async list(tenantId: string) {
      const members = await listMembers(db, tenantId);
      return Promise.all(
        members.map(async (member) => {
          const limits = parseLimits(await membershipLimits(db, tenantId, member.user_id));
          return { ...member, limits: await quota.status("member", `${tenantId}:${member.user_id}`, tenantId, limits) };
        }),
      );
    },

    get: (tenantId: string, userId: string) => requireMemberIn(db, tenantId, userId),

    /** Adds an existing user at once; for an unknown email, creates an invitation to accept. */
    async add(actor: Actor, context: TenantContext, input: { email: string; role: TTenantRole }) {
      assertMayAssign(context, input.role);
      const tenantId = context.tenant.id;
      const result = await db.transaction().execute(async (trx) => {
        const now = clock.now().toISOString();
        const user = await findUserByEmail(trx, input.email);
        if (user) {
          if (await findMember(trx, tenantId, user.id)) throw conflict("already a member", { field: "email" });
          await insertMembership(trx, tenantId, { user_id: user.id, role: input.role, created_at: now });
          const member = await requireMemberIn(trx, tenantId, user.id);
          await audit.record(trx, actor, { tenantId, action: "member.add", targetType: "membership", targetId: user.id, after: member });
          return { member, invitation: null };
        }
        const token = randomToken("lyss_inv_");
        const invitation: InvitationsTable = {
          id: newId(),
          tenant_id: tenantId,
          email: input.email,
          role: input.role,
          token_hash: hashToken(token),
          invited_by: actor.userId,
          expires_at: isoIn(clock, INVITATION_TTL_SECONDS),
          accepted_at: null,
          created_at: now,
        };
        await insertInvitation(trx, invitation);
        const view = toInvitationView(invitation);
        await audit.record(trx, actor, {
          tenantId,
          action: "member.invite",
          targetType: "invitation",
          targetId: invitation.id,
          after: view,
        });
        return { member: null, invitation: { ...view, token } };
      });
      bus.publish(AUTH_TOPICS.user);
      return result;
    },

    /** Changes a member's role and/or quota limits. */
    async update(
      actor: Actor,
      context: TenantContext,
      userId: string,
      patch: { role?: TTenantRole | undefined; limits?: Limit[] | undefined },
    ) {
      const tenantId = context.tenant.id;
      const member = await db.transaction().execute(async (trx) => {
        const before = {
          ...(await requireMemberIn(trx, tenantId, userId)),
          limits: parseLimits(await membershipLimits(trx, tenantId, userId)),
        };
        if (patch.role !== undefined) {
          assertMayAssign(context, patch.role);
          assertMayAssign(context, before.role);
          if (before.role === "owner" && patch.role !== "owner" && (await countOwners(trx, tenantId)) <= 1) {
            throw new AppError("unprocessable", "a tenant keeps at least one owner");
          }
          await updateMembershipRole(trx, tenantId, userId, patch.role);
        }
        if (patch.limits !== undefined) await updateMembershipLimits(trx, tenantId, userId, JSON.stringify(patch.limits));
        const after = { ...(await requireMemberIn(trx, tenantId, userId)), limits: patch.limits ?? before.limits };
        await audit.record(trx, actor, { tenantId, action: "member.update", targetType: "membership", targetId: userId, before, after });
        return after;
      });
      bus.publish(AUTH_TOPICS.user, { userId });
      return { ...member, limits: await quota.status("member", `${tenantId}:${userId}`, tenantId, member.limits) };
    },

    async remove(actor: Actor, context: TenantContext, userId: string) {
      const tenantId = context.tenant.id;
      await db.transaction().execute(async (trx) => {
        const before = await requireMemberIn(trx, tenantId, userId);
        assertMayAssign(context, before.role);
        if (before.role === "owner" && (await countOwners(trx, tenantId)) <= 1) {
          throw new AppError("unprocessable", "a tenant keeps at least one owner");
        }
        await deleteMembership(trx, tenantId, userId);
        await audit.record(trx, actor, { tenantId, action: "member.remove", targetType: "membership", targetId: userId, before });
      });
      bus.publish(AUTH_TOPICS.user, { userId });
    },

    async invitations(tenantId: string) {
      return (await listInvitations(db, tenantId)).map(toInvitationView);
    },

    async revokeInvitation(actor: Actor, tenantId: string, id: string) {
      await db.transaction().execute(async (trx) => {
        if ((await deleteInvitation(trx, tenantId, id)) === 0) throw notFound("invitation");
        await audit.record(trx, actor, { tenantId, action: "invitation.revoke", targetType: "invitation", targetId: id });
      });
    },

    /** Joins the invited tenant, creating the account first when the email has none. */
    async accept(actor: Actor, input: { token: string; name?: string | undefined; password?: string | undefined }) {
      const result = await db.transaction().execute(async (trx) => {
        const invitation = await findInvitationByTokenHash(trx, hashToken(input.token));
        if (!invitation || invitation.accepted_at || invitation.expires_at <= clock.now().toISOString()) {
          throw notFound("invitation");
        }
        if (!(await markInvitationAccepted(trx, invitation.id, clock.now().toISOString()))) throw notFound("invitation");
        let user = await findUserByEmail(trx, invitation.email);
        if (!user) {
          if (!input.name || !input.password) {
            throw new AppError("validation_failed", "name and password are required to create the account", {
              fields: [
                { field: "body.name", message: "required" },
                { field: "body.password", message: "required" },
              ],
            });
          }
          user = await users.createIn(trx, actor, { email: invitation.email, name: input.name, password: input.password });
        }
        const self = { ...actor, userId: actor.userId ?? user.id, email: actor.email ?? user.email };
        if (!(await findMember(trx, invitation.tenant_id, user.id))) {
          await insertMembership(trx, invitation.tenant_id, {
            user_id: user.id,
            role: invitation.role,
            created_at: clock.now().toISOString(),
          });
        }
        const member = await requireMemberIn(trx, invitation.tenant_id, user.id);
        await audit.record(trx, self, {
          tenantId: invitation.tenant_id,
          action: "invitation.accept",
          targetType: "membership",
          targetId: user.id,
          after: member,
        });
        return { user: toUserView(user), tenant_id: invitation.tenant_id, role: invitation.role };
      });
      bus.publish(AUTH_TOPICS.user, { userId: result.user.id });
      return result;
    },
  };

  async function requireMemberIn(trx: ServiceDeps["db"], tenantId: string, userId: string): Promise<TMember> {
    const member = await findMember(trx, tenantId, userId);
    if (!member) throw notFound("member");
    return member;
  }
}

export type MemberService = ReturnType<typeof createMemberService>;
