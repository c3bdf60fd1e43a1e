import type { TToken } from "@lyss/contracts";
import type { AccessTokensTable } from "../../db/schema.ts";
import { AppError, notFound } from "../../errors/app-error.ts";
import { hashToken, randomToken } from "../../infra/crypto.ts";
import { newId } from "../../infra/ids.ts";
import type { Actor } from "../audit/service.ts";
import { roleAtLeast, type TenantContext } from "../auth/guard.ts";
import type { ServiceDeps } from "../deps.ts";
import { findMember } from "../members/repository.ts";
import type { QuotaService } from "../quota/service.ts";
import { deleteToken, findToken, insertToken, listTokens, updateToken } from "./repository.ts";
import type { Limit, TokenCache } from "./token-cache.ts";

export interface TokenInput {
  name: string;
  expires_at: string | null;
  models: string[] | null;
  channel_groups: string[] | null;
  ip_allowlist: string[];
  status: "enabled" | "disabled";
  allow_dry_run: boolean;
  limits: Limit[];
  rate_limits: { rpm?: number | undefined; tpm?: number | undefined };
}

type TokenConfig = Omit<TToken, "limits"> & { limits: Limit[] };

export function toTokenView(row: AccessTokensTable): TokenConfig {
  return {
    id: row.id,
    name: row.name,
    user_id: row.user_id,
    key_prefix: row.key_prefix,
    expires_at: row.expires_at,
    models: row.models === null ? null : (JSON.parse(row.models) as string[]),
    channel_groups: row.channel_groups === null ? null : (JSON.parse(row.channel_groups) as string[]),
    ip_allowlist: JSON.parse(row.ip_allowlist) as string[],
    status: row.status,
    allow_dry_run: row.allow_dry_run === 1,
    limits: JSON.parse(row.limits) as Limit[],
    rate_limits: JSON.parse(row.rate_limits) as { rpm?: number; tpm?: number },
    last_used_at: row.last_used_at,
    created_at: row.created_at,
    updated_at: row.updated_at,
  };
}

const columns = (input: Partial<TokenInput>) => ({
  ...(input.name !== undefined && { name: input.name }),
  ...(input.expires_at !== undefined && { expires_at: input.expires_at }),
  ...(input.models !== undefined && { models: input.models === null ? null : JSON.stringify([...new Set(input.models)]) }),
  ...(input.channel_groups !== undefined && {
    channel_groups: input.channel_groups === null ? null : JSON.stringify(input.channel_groups),
  }),
  ...(input.ip_allowlist !== undefined && { ip_allowlist: JSON.stringify(input.ip_allowlist) }),
  ...(input.status !== undefined && { status: input.status }),
  ...(input.allow_dry_run !== undefined && { allow_dry_run: input.allow_dry_run ? 1 : 0 }),
  ...(input.limits !== undefined && { limits: JSON.stringify(input.limits) }),
  ...(input.rate_limits !== undefined && { rate_limits: JSON.stringify(input.rate_limits) }),
});

/** Members see and manage their own tokens; admins and owners the tenant's. */
export function createTokenService(deps: ServiceDeps & { cache: TokenCache; quota: QuotaService }) {
  const { db, clock, audit, cache } = deps;

  /** The token as the API shows it, its limits with what is used and reserved. */
  async function present(row: AccessTokensTable): Promise<TToken> {
    const view = toTokenView(row);
    return { ...view, limits: await deps.quota.status("token", row.id, row.tenant_id, view.limits) };
  }
  const isAdmin = (context: TenantContext) => roleAtLeast(context.role, "admin");

  async function requireVisible(context: TenantContext, userId: string, id: string) {
    const row = await findToken(db, context.tenant.id, id);
    if (!row || (!isAdmin(context) && row.user_id !== userId)) throw notFound("token");
    return row;
  }

  return {
    async list(context: TenantContext, userId: string) {
      return Promise.all((await listTokens(db, context.tenant.id, isAdmin(context) ? undefined : userId)).map(present));
    },

    async get(context: TenantContext, userId: string, id: string) {
      return present(await requireVisible(context, userId, id));
    },

    async create(actor: Actor, context: TenantContext, userId: string, input: TokenInput & { user_id?: string | undefined }) {
      const tenantId = context.tenant.id;
      const ownerId = input.user_id ?? userId;
      if (ownerId !== userId) {
        if (!isAdmin(context)) throw new AppError("forbidden", "only admins create tokens for other members");
        if (!(await findMember(db, tenantId, ownerId))) throw new AppError("unprocessable", "the owner is not a member of this tenant");
      }
      const key = randomToken("sk-", 32);
      const now = clock.now().toISOString();
      const row: AccessTokensTable = {
        id: newId(),
        tenant_id: tenantId,
        user_id: ownerId,
        key_hash: hashToken(key),
        key_prefix: `${key.slice(0, 8)}…`,
        last_used_at: null,
        created_at: now,
        updated_at: now,
        name: input.name,
        expires_at: input.expires_at,
        models: null,
        channel_groups: null,
        ip_allowlist: "[]",
        status: input.status,
        allow_dry_run: 0,
        limits: "[]",
        rate_limits: "{}",
        ...columns(input),
      };
      await db.transaction().execute(async (trx) => {
        await insertToken(trx, row);
        await audit.record(trx, actor, {
          tenantId,
          action: "token.create",
          targetType: "token",
          targetId: row.id,
          after: toTokenView(row),
        });
      });
      cache.changed(row.key_hash);
      return { ...(await present(row)), key };
    },

    async update(actor: Actor, context: TenantContext, userId: string, id: string, patch: Partial<TokenInput>) {
      const before = await requireVisible(context, userId, id);
      const after = { ...before, ...columns(patch), updated_at: clock.now().toISOString() };
      await db.transaction().execute(async (trx) => {
        await updateToken(trx, context.tenant.id, id, after);
        await audit.record(trx, actor, {
          tenantId: context.tenant.id,
          action: "token.update",
          targetType: "token",
          targetId: id,
          before: toTokenView(before),
          after: toTokenView(after),
        });
      });
      cache.changed(before.key_hash);
      return present(after);
    },

    async remove(actor: Actor, context: TenantContext, userId: string, id: string) {
      const before = await requireVisible(context, userId, id);
      await db.transaction().execute(async (trx) => {
        await deleteToken(trx, context.tenant.id, id);
        await audit.record(trx, actor, {
          tenantId: context.tenant.id,
          action: "token.delete",
          targetType: "token",
          targetId: id,
          before: toTokenView(before),
        });
      });
      cache.changed(before.key_hash);
    },
  };
}

export type TokenService = ReturnType<typeof createTokenService>;
