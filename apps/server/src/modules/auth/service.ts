import type { Kysely } from "kysely";
import type { Database } from "../../db/schema.ts";
import { AppError, forbidden, unauthorized } from "../../errors/app-error.ts";
import { hashPassword, hashToken, randomToken, UNUSABLE_PASSWORD_HASH, verifyPassword } from "../../infra/crypto.ts";
import { isUniqueViolation } from "../../infra/db.ts";
import { newId } from "../../infra/ids.ts";
import type { Limiter } from "../../infra/rate-limiter.ts";
import type { Actor } from "../audit/service.ts";
import type { ServiceDeps } from "../deps.ts";
import type { TenantService } from "../tenants/service.ts";
import { findUserByEmail, findUserById, toUserView, type UserRow, updateUser } from "../users/repository.ts";
import type { UserService } from "../users/service.ts";
import type { AccessTokens } from "./jwt.ts";
import { AUTH_TOPICS } from "./principal-cache.ts";
import {
  consumeRefreshToken,
  findRefreshToken,
  insertRefreshToken,
  insertSession,
  revokeSession,
  revokeSessionsOfUser,
} from "./repository.ts";

/** Marks that first-run setup happened; its primary key makes a second setup fail atomically. */
const SETUP_MARKER = "system.setup_completed";

export interface AuthDeps extends ServiceDeps {
  tokens: AccessTokens;
  refreshTtlSeconds: number;
  users: UserService;
  tenants: TenantService;
  loginLimits: { perAccount: Limiter; perIp: Limiter };
}

export interface ClientInfo {
  ip: string | null;
  userAgent: string | null;
}

const rateLimited = (retryAfter: number) =>
  new AppError(
    "rate_limited",
    "too many login attempts; try again later",
    { retry_after: retryAfter },
    {
      "retry-after": String(retryAfter),
    },
  );

export function createAuthService(deps: AuthDeps) {
  const { db, clock, bus, audit, tokens } = deps;

  /** Opens a session and answers its first token pair. */
  async function openSession(trx: Kysely<Database>, user: UserRow, client: ClientInfo) {
    const now = clock.now();
    const sessionId = newId();
    const expiresAt = new Date(now.getTime() + deps.refreshTtlSeconds * 1000).toISOString();
    await insertSession(trx, {
      id: sessionId,
      user_id: user.id,
      created_at: now.toISOString(),
      expires_at: expiresAt,
      revoked_at: null,
      ip: client.ip,
      user_agent: client.userAgent?.slice(0, 500) ?? null,
    });
    return issuePair(trx, user, sessionId, expiresAt);
  }

  async function issuePair(trx: Kysely<Database>, user: UserRow, sessionId: string, expiresAt: string) {
    const refreshToken = randomToken("lyss_rt_");
    await insertRefreshToken(trx, {
      token_hash: hashToken(refreshToken),
      session_id: sessionId,
      expires_at: expiresAt,
      used_at: null,
      created_at: clock.now().toISOString(),
    });
    const accessToken = await tokens.sign({ userId: user.id, sessionId, tokenVersion: user.token_version });
    return {
      access_token: accessToken,
      refresh_token: refreshToken,
      token_type: "Bearer" as const,
      expires_in: tokens.ttlSeconds,
    };
  }

  /** Creates the first administrator and tenant; works only once. */
  async function setup(
    actor: Actor,
    input: { email: string; password: string; name: string; tenant_name?: string | undefined },
    client: ClientInfo,
  ) {
    const result = await db.transaction().execute(async (trx) => {
      try {
        await trx
          .insertInto("platform_settings")
          .values({ key: SETUP_MARKER, value: "true", updated_at: clock.now().toISOString() })
          .execute();
      } catch (error) {
        if (isUniqueViolation(error)) throw new AppError("setup_completed", "setup has already been completed");
        throw error;
      }
      const existing = await trx.selectFrom("users").select("id").limit(1).executeTakeFirst();
      if (existing) throw new AppError("setup_completed", "setup has already been completed");
      const user = await deps.users.createIn(trx, actor, { ...input, is_platform_admin: true });
      const self = { ...actor, userId: user.id, email: user.email };
      const tenant = await deps.tenants.createIn(trx, self, { name: input.tenant_name ?? "Default", ownerId: user.id });
      const pair = await openSession(trx, user, client);
      return { ...pair, user: toUserView(user), tenant };
    });
    bus.publish(AUTH_TOPICS.user);
    bus.publish(AUTH_TOPICS.tenant);
    return result;
  }

  return {
    setup,

    async isSetUp(): Promise<boolean> {
      const row = await db.selectFrom("platform_settings").select("key").where("key", "=", SETUP_MARKER).executeTakeFirst();
      return row !== undefined;
    },

    async login(input: { email: string; password: string }, client: ClientInfo) {
      const ipKey = client.ip ?? "unknown";
      const ipWait = await deps.loginLimits.perIp.hit(ipKey);
      if (ipWait > 0) throw rateLimited(ipWait);
      const accountWait = await deps.loginLimits.perAccount.blockedFor(input.email);
      if (accountWait > 0) throw rateLimited(accountWait);

      const user = await findUserByEmail(db, input.email);
      const valid = await verifyPassword(input.password, user?.password_hash ?? UNUSABLE_PASSWORD_HASH);
      if (!user || !valid) {
        await deps.loginLimits.perAccount.hit(input.email);
        throw new AppError("invalid_credentials", "wrong email or password");
      }
      if (user.status !== "active") throw forbidden("this account is disabled");
      await deps.loginLimits.perAccount.reset(input.email);
      const now = clock.now().toISOString();
      const pair = await db.transaction().execute(async (trx) => {
        await updateUser(trx, user.id, { last_login_at: now });
        return openSession(trx, user, client);
      });
      return { ...pair, user: toUserView({ ...user, last_login_at: now }) };
    },

    /** Rotates a refresh token. Presenting a used one ends its session: it was stolen or replayed. */
    async refresh(refreshToken: string) {
      const tokenHash = hashToken(refreshToken);
      const now = clock.now().toISOString();
      const outcome = await db.transaction().execute(async (trx) => {
        const row = await findRefreshToken(trx, tokenHash);
        if (!row || row.revoked_at || row.expires_at <= now) return { error: "invalid refresh token" } as const;
        if (!(await consumeRefreshToken(trx, tokenHash, now))) {
          await revokeSession(trx, row.session_id, now);
          return { error: "refresh token reused; the session was ended", sessionId: row.session_id } as const;
        }
        const user = await findUserById(trx, row.user_id);
        if (user?.status !== "active") return { error: "account disabled" } as const;
        return { pair: await issuePair(trx, user, row.session_id, row.session_expires_at) } as const;
      });
      if ("error" in outcome) {
        if ("sessionId" in outcome) bus.publish(AUTH_TOPICS.session, { sessionId: outcome.sessionId });
        throw unauthorized(outcome.error);
      }
      return outcome.pair;
    },

    /** Ends the current session (and the given refresh token's session, if it is the caller's). */
    async logout(userId: string, sessionId: string, refreshToken?: string) {
      const now = clock.now().toISOString();
      const ended = [sessionId];
      await db.transaction().execute(async (trx) => {
        await revokeSession(trx, sessionId, now);
        if (refreshToken) {
          const row = await findRefreshToken(trx, hashToken(refreshToken));
          if (row && row.user_id === userId) {
            await revokeSession(trx, row.session_id, now);
            ended.push(row.session_id);
          }
        }
      });
      for (const id of ended) bus.publish(AUTH_TOPICS.session, { sessionId: id });
    },

    async changePassword(actor: Actor, user: UserRow, sessionId: string, input: { current_password: string; new_password: string }) {
      if (!(await verifyPassword(input.current_password, user.password_hash))) {
        throw new AppError("invalid_credentials", "the current password is wrong", { field: "current_password" });
      }
      const passwordHash = await hashPassword(input.new_password);
      const ended = await db.transaction().execute(async (trx) => {
        const now = clock.now().toISOString();
        await updateUser(trx, user.id, { password_hash: passwordHash, updated_at: now });
        await audit.record(trx, actor, { tenantId: null, action: "user.password_change", targetType: "user", targetId: user.id });
        return revokeSessionsOfUser(trx, user.id, now, sessionId);
      });
      bus.publish(AUTH_TOPICS.user, { userId: user.id });
      for (const id of ended) bus.publish(AUTH_TOPICS.session, { sessionId: id });
    },

    async updateProfile(actor: Actor, user: UserRow, input: { name: string }) {
      const now = clock.now().toISOString();
      await db.transaction().execute(async (trx) => {
        await updateUser(trx, user.id, { name: input.name, updated_at: now });
        await audit.record(trx, actor, {
          tenantId: null,
          action: "user.update",
          targetType: "user",
          targetId: user.id,
          before: { name: user.name },
          after: { name: input.name },
        });
      });
      bus.publish(AUTH_TOPICS.user, { userId: user.id });
      return toUserView({ ...user, name: input.name, updated_at: now });
    },
  };
}

export type AuthService = ReturnType<typeof createAuthService>;
