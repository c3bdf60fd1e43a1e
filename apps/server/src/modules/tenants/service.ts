import type { TTenant } from "@lyss/contracts";
import type { Kysely } from "kysely";
import type { Database } from "../../db/schema.ts";
import { AppError, notFound } from "../../errors/app-error.ts";
import { randomToken } from "../../infra/crypto.ts";
import { newId } from "../../infra/ids.ts";
import type { Actor } from "../audit/service.ts";
import { AUTH_TOPICS } from "../auth/principal-cache.ts";
import { definedOnly, type ServiceDeps } from "../deps.ts";
import { insertMembership } from "../members/repository.ts";
import { type Limit, parseLimits } from "../tokens/token-cache.ts";
import { findUserByEmail } from "../users/repository.ts";
import { deleteTenant, findTenantById, insertTenant, listTenants, slugExists, toTenantView, updateTenant } from "./repository.ts";

function slugify(name: string): string {
  const slug = name
    .normalize("NFKD")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 40);
  return slug.length >= 2
    ? slug
    : `tenant-${randomToken("", 4)
        .toLowerCase()
        .replace(/[^a-z0-9]/g, "")}`;
}

async function uniqueSlug(db: Kysely<Database>, base: string): Promise<string> {
  let candidate = base;
  for (let attempt = 2; await slugExists(db, candidate); attempt++) candidate = `${base}-${attempt}`;
  return candidate;
}

export function createTenantService(deps: ServiceDeps) {
  const { clock, bus, audit } = deps;

  /** Creates a tenant, with `ownerId` as its owner, inside the caller's transaction. */
  async function createIn(
    trx: Kysely<Database>,
    actor: Actor,
    input: { name: string; slug?: string | undefined; ownerId?: string | undefined },
  ): Promise<TTenant> {
    if (input.slug && (await slugExists(trx, input.slug))) {
      throw new AppError("conflict", "a tenant with this slug exists", { field: "slug" });
    }
    const now = clock.now().toISOString();
    const row = {
      id: newId(),
      name: input.name,
      slug: input.slug ?? (await uniqueSlug(trx, slugify(input.name))),
      status: "active" as const,
      limits: "[]",
      created_at: now,
      updated_at: now,
    };
    await insertTenant(trx, row);
    if (input.ownerId) await insertMembership(trx, row.id, { user_id: input.ownerId, role: "owner", created_at: now });
    await audit.record(trx, actor, {
      tenantId: row.id,
      action: "tenant.create",
      targetType: "tenant",
      targetId: row.id,
      after: { ...row, owner_id: input.ownerId ?? null },
    });
    return toTenantView(row);
  }

  return {
    createIn,

    async create(actor: Actor, input: { name: string; slug?: string | undefined; owner_email?: string | undefined }) {
      const tenant = await deps.db.transaction().execute(async (trx) => {
        let ownerId = actor.userId ?? undefined;
        if (input.owner_email) {
          const owner = await findUserByEmail(trx, input.owner_email);
          if (!owner) throw new AppError("unprocessable", "no user has this email", { field: "owner_email" });
          ownerId = owner.id;
        }
        return createIn(trx, actor, { name: input.name, slug: input.slug, ownerId });
      });
      bus.publish(AUTH_TOPICS.tenant);
      return tenant;
    },

    async list(options: { memberUserId?: string | undefined; cursor?: string | undefined; limit: number }) {
      const rows = await listTenants(deps.db, { ...options, beforeId: options.cursor, limit: options.limit + 1 });
      const page = rows.slice(0, options.limit);
      return {
        data: page.map(toTenantView),
        next_cursor: rows.length > options.limit ? (page.at(-1)?.id ?? null) : null,
      };
    },

    async get(id: string) {
      const row = await findTenantById(deps.db, id);
      if (!row) throw notFound("tenant");
      return { ...toTenantView(row), limits: parseLimits(row.limits) };
    },

    async update(
      actor: Actor,
      id: string,
      patch: { name?: string | undefined; status?: TTenant["status"] | undefined; limits?: Limit[] | undefined },
    ) {
      const tenant = await deps.db.transaction().execute(async (trx) => {
        const before = await findTenantById(trx, id);
        if (!before) throw notFound("tenant");
        const { limits, ...rest } = patch;
        const after = {
          ...before,
          ...definedOnly(rest),
          ...(limits === undefined ? {} : { limits: JSON.stringify(limits) }),
          updated_at: clock.now().toISOString(),
        };
        await updateTenant(trx, id, after);
        await audit.record(trx, actor, { tenantId: id, action: "tenant.update", targetType: "tenant", targetId: id, before, after });
        return toTenantView(after);
      });
      bus.publish(AUTH_TOPICS.tenant);
      return tenant;
    },

    async remove(actor: Actor, id: string) {
      await deps.db.transaction().execute(async (trx) => {
        const before = await findTenantById(trx, id);
        if (!before) throw notFound("tenant");
        await deleteTenant(trx, id);
        await audit.record(trx, actor, { tenantId: id, action: "tenant.delete", targetType: "tenant", targetId: id, before });
      });
      bus.publish(AUTH_TOPICS.tenant);
    },
  };
}

export type TenantService = ReturnType<typeof createTenantService>;
