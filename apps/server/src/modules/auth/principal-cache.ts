import type { Kysely } from "kysely";
import { LRUCache } from "lru-cache";
import type { Database, TenantsTable } from "../../db/schema.ts";
import type { EventBus } from "../../infra/bus.ts";
import type { Maybe } from "../../infra/maybe.ts";
import { listMembershipsOfUser, type MembershipWithTenant } from "../members/repository.ts";
import { findTenantById } from "../tenants/repository.ts";
import { findUserById, type UserRow } from "../users/repository.ts";
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

const MISSING = Symbol("missing");
type Cached<T> = T | typeof MISSING;

/**
 * Users, their memberships, tenants and sessions as the request guard needs them, kept in memory
 * and dropped on every change (bus events), with a short TTL as a second line of defence.
 */
export function createPrincipalCache(db: Kysely<Database>, bus: EventBus) {
  const options = { max: 10_000, ttl: 30_000 };
  const users = new LRUCache<string, Cached<UserRow>>(options);
  const memberships = new LRUCache<string, MembershipWithTenant[]>(options);
  const tenants = new LRUCache<string, Cached<TenantsTable>>(options);
  const sessions = new LRUCache<string, Cached<SessionState>>(options);

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

  /** The cached value, with no promise when it is there; otherwise loaded and kept. */
  function through<T extends {}>(
    cache: LRUCache<string, Cached<T>>,
    key: string,
    load: () => Promise<T | undefined>,
  ): Maybe<T | undefined> {
    const hit = cache.get(key);
    if (hit !== undefined) return hit === MISSING ? undefined : (hit as T);
    return load().then((value) => {
      cache.set(key, value ?? MISSING);
      return value;
    });
  }

  return {
    /** Changes with every change of a user, a membership or a tenant (on any instance). */
    get generation() {
      return generation;
    },
    user: (id: string) => through(users, id, () => findUserById(db, id)),
    tenant: (id: string) => through(tenants, id, () => findTenantById(db, id)),
    session: (id: string) =>
      through(sessions, id, async () => {
        const row = await findSession(db, id);
        return row ? { userId: row.user_id, revoked: row.revoked_at !== null, expiresAt: row.expires_at } : undefined;
      }),
    async memberships(userId: string): Promise<MembershipWithTenant[]> {
      const hit = memberships.get(userId);
      if (hit) return hit;
      const rows = await listMembershipsOfUser(db, userId);
      memberships.set(userId, rows);
      return rows;
    },
    close() {
      for (const stop of unsubscribe) stop();
    },
  };
}

export type PrincipalCache = ReturnType<typeof createPrincipalCache>;
