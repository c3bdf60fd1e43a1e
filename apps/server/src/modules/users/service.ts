import type { TUser } from "@lyss/contracts";
import type { Kysely } from "kysely";
import type { Database } from "../../db/schema.ts";
import { AppError, conflict, notFound } from "../../errors/app-error.ts";
import { hashPassword } from "../../infra/crypto.ts";
import { isUniqueViolation } from "../../infra/db.ts";
import { newId } from "../../infra/ids.ts";
import type { Actor } from "../audit/service.ts";
import { AUTH_TOPICS } from "../auth/principal-cache.ts";
import { revokeSessionsOfUser } from "../auth/repository.ts";
import { definedOnly, type ServiceDeps } from "../deps.ts";
import {
  bumpTokenVersion,
  countActivePlatformAdmins,
  deleteUser,
  findUserByEmail,
  findUserById,
  insertUser,
  listUsers,
  toUserView,
  type UserRow,
  updateUser,
} from "./repository.ts";

export interface NewUser {
  email: string;
  name: string;
  password: string;
  is_platform_admin?: boolean | undefined;
}

export function createUserService(deps: ServiceDeps) {
  const { clock, bus, audit } = deps;

  /** Ends every session and access token of a user at once. */
  async function signOutEverywhere(trx: Kysely<Database>, userId: string, at: string) {
    await bumpTokenVersion(trx, userId, at);
    await revokeSessionsOfUser(trx, userId, at);
  }

  async function requireUser(db: Kysely<Database>, id: string): Promise<UserRow> {
    const user = await findUserById(db, id);
    if (!user) throw notFound("user");
    return user;
  }

  /** Creates a user inside the caller's transaction; a taken email is a 409. */
  async function createIn(trx: Kysely<Database>, actor: Actor, input: NewUser): Promise<UserRow> {
    if (await findUserByEmail(trx, input.email)) throw conflict("a user with this email exists", { field: "email" });
    const now = clock.now().toISOString();
    const row = {
      id: newId(),
      email: input.email.toLowerCase(),
      name: input.name,
      password_hash: await hashPassword(input.password),
      is_platform_admin: input.is_platform_admin ? 1 : 0,
      status: "active" as const,
      created_at: now,
      updated_at: now,
      last_login_at: null,
    };
    try {
      await insertUser(trx, row);
    } catch (error) {
      if (isUniqueViolation(error)) throw conflict("a user with this email exists", { field: "email" });
      throw error;
    }
    const user = { ...row, token_version: 0 };
    await audit.record(trx, actor, {
      tenantId: null,
      action: "user.create",
      targetType: "user",
      targetId: row.id,
      after: toUserView(user),
    });
    return user;
  }

  return {
    createIn,
    signOutEverywhere,

    async create(actor: Actor, input: NewUser): Promise<TUser> {
      return toUserView(await deps.db.transaction().execute((trx) => createIn(trx, actor, input)));
    },

    async get(id: string): Promise<TUser> {
      return toUserView(await requireUser(deps.db, id));
    },

    async list(options: { search?: string | undefined; cursor?: string | undefined; limit: number }) {
      const rows = await listUsers(deps.db, { search: options.search, beforeId: options.cursor, limit: options.limit + 1 });
      const page = rows.slice(0, options.limit);
      return {
        data: page.map(toUserView),
        next_cursor: rows.length > options.limit ? (page.at(-1)?.id ?? null) : null,
      };
    },

    async update(
      actor: Actor,
      id: string,
      patch: { name?: string | undefined; status?: TUser["status"] | undefined; is_platform_admin?: boolean | undefined },
    ): Promise<TUser> {
      const user = await deps.db.transaction().execute(async (trx) => {
        const before = await requireUser(trx, id);
        const losesAdmin =
          before.is_platform_admin === 1 &&
          before.status === "active" &&
          (patch.is_platform_admin === false || patch.status === "disabled");
        if (losesAdmin && id === actor.userId) {
          throw new AppError("unprocessable", "you cannot disable or demote yourself");
        }
        if (losesAdmin && (await countActivePlatformAdmins(trx)) <= 1) {
          throw new AppError("unprocessable", "the last active platform administrator must stay");
        }
        const now = clock.now().toISOString();
        const changes = definedOnly({
          name: patch.name,
          status: patch.status,
          is_platform_admin: patch.is_platform_admin === undefined ? undefined : patch.is_platform_admin ? 1 : 0,
        });
        await updateUser(trx, id, { ...changes, updated_at: now });
        if (patch.status === "disabled" && before.status !== "disabled") await signOutEverywhere(trx, id, now);
        const after = await requireUser(trx, id);
        await audit.record(trx, actor, {
          tenantId: null,
          action: "user.update",
          targetType: "user",
          targetId: id,
          before: toUserView(before),
          after: toUserView(after),
        });
        return after;
      });
      bus.publish(AUTH_TOPICS.user, { userId: id });
      bus.publish(AUTH_TOPICS.session);
      return toUserView(user);
    },

    async remove(actor: Actor, id: string): Promise<void> {
      await deps.db.transaction().execute(async (trx) => {
        const before = await requireUser(trx, id);
        if (id === actor.userId) throw new AppError("unprocessable", "you cannot delete yourself");
        if (before.is_platform_admin === 1 && before.status === "active" && (await countActivePlatformAdmins(trx)) <= 1) {
          throw new AppError("unprocessable", "the last active platform administrator must stay");
        }
        await deleteUser(trx, id);
        await audit.record(trx, actor, {
          tenantId: null,
          action: "user.delete",
          targetType: "user",
          targetId: id,
          before: toUserView(before),
        });
      });
      bus.publish(AUTH_TOPICS.user, { userId: id });
      bus.publish(AUTH_TOPICS.session);
    },

    /** Sets a new password and signs the user out everywhere. */
    async resetPassword(actor: Actor, id: string, password: string): Promise<void> {
      const passwordHash = await hashPassword(password);
      await deps.db.transaction().execute(async (trx) => {
        await requireUser(trx, id);
        const now = clock.now().toISOString();
        await updateUser(trx, id, { password_hash: passwordHash, updated_at: now });
        await signOutEverywhere(trx, id, now);
        await audit.record(trx, actor, { tenantId: null, action: "user.password_reset", targetType: "user", targetId: id });
      });
      bus.publish(AUTH_TOPICS.user, { userId: id });
      bus.publish(AUTH_TOPICS.session);
    },
  };
}

export type UserService = ReturnType<typeof createUserService>;
