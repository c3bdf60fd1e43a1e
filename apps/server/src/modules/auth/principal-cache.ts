import type { Kysely } from "kysely";
import type { Database } from "../../db/schema.ts";
import type { EventBus } from "../../infra/bus.ts";
import { RefreshingCache } from "../../infra/refreshing-cache.ts";
import { listMembershipsOfUser, type MembershipWithTenant } from "../members/repository.ts";
import { findTenantById } from "../tenants/repository.ts";
import { findUserById } from "../users/repository.ts";
import { findSession } from "./repository.ts";

/** Topics that invalidate what this cache holds, on this and every other instance. */
export const AUTH_TOPICS = {
  user: "auth.user",
  tenant: "auth.tenant",
  session: "auth.session",
} as const;

interface SessionState {
  userId: string;
  revoked: boolean;
  expiresAt: string;
}

/**
 * Users, their memberships, tenants and sessions as the request guard and the gateway need them, kept
 * in memory and dropped on every change (bus events); past a short TTL, a second line of defence, each
 * is read again behind the request that finds it expired (see `RefreshingCache`).
 */
export function createPrincipalCache(db: Kysely<Database>, bus: EventBus, options: { now?: () => number } = {}) {
  const settings = { max: 10_000, ttlMs: 30_000, ...options };
  const users = new RefreshingCache({ ...settings, load: (id) => findUserById(db, id) });
  const memberships = new RefreshingCache({ ...settings, load: (userId) => listMembershipsOfUser(db, userId) });
  const tenants = new RefreshingCache({ ...settings, load: (id) => findTenantById(db, id) });
  const sessions = new RefreshingCache({
    ...settings,
    load: async (id): Promise<SessionState | undefined> => {
      const row = await findSession(db, id);
      return row ? { userId: row.user_id, revoked: row.revoked_at !== null, expiresAt: row.expires_at } : undefined;
    },
  });

  /** Counts the changes to users, memberships and tenants seen, for what others derive from them. */
  let generation = 0;
  const unsubscribe = [
    bus.subscribe(AUTH_TOPICS.user, (payload) => {
      generation++;
      const userId = (payload as { userId?: string } | null)?.userId;
      if (userId) {
        users.delete(userId);
        memberships.delete(userId);
      } else {
        users.clear();
        memberships.clear();
      }
    }),
    bus.subscribe(AUTH_TOPICS.tenant, () => {
      generation++;
      tenants.clear();
      memberships.clear();
    }),
    bus.subscribe(AUTH_TOPICS.session, (payload) => {
      const sessionId = (payload as { sessionId?: string } | null)?.sessionId;
      if (sessionId) sessions.delete(sessionId);
      else sessions.clear();
    }),
  ];

  return {
    /** Changes with every change of a user, a membership or a tenant (on any instance). */
    get generation() {
      return generation;
    },
    user: (id: string) => users.get(id),
    tenant: (id: string) => tenants.get(id),
    session: (id: string) => sessions.get(id),
    async memberships(userId: string): Promise<MembershipWithTenant[]> {
      return memberships.get(userId);
    },
    close() {
      for (const stop of unsubscribe) stop();
    },
  };
}

export type PrincipalCache = ReturnType<typeof createPrincipalCache>;
