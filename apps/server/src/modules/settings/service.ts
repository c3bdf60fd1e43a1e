import type { Maybe } from "../../infra/maybe.ts";
import { RefreshingCache } from "../../infra/refreshing-cache.ts";
import type { Actor } from "../audit/service.ts";
import type { ServiceDeps } from "../deps.ts";
import { PLATFORM_SETTINGS, type SettingsRegistry, TENANT_SETTINGS } from "./registry.ts";

const TOPIC = "settings.changed";
const PLATFORM = "platform";

type Values = Record<string, unknown>;

/** A scope's effective values and the ones stored for it; shared by every reader, so frozen. */
interface Resolved {
  values: Readonly<Values>;
  overrides: Readonly<Values>;
}

const freeze = (result: { values: Values; overrides: Values }): Resolved => ({
  values: Object.freeze(result.values),
  overrides: Object.freeze(result.overrides),
});

/**
 * Runtime settings stored in the database, read through an in-memory cache that every instance
 * drops when any instance changes a value.
 */
export function createSettingsService(deps: ServiceDeps) {
  const { db, clock, bus, audit } = deps;
  const cache = new RefreshingCache({ max: 10_000, ttlMs: 60_000, load });
  /** Effective values (defaults, inherited and stored merged), read on every gateway request. */
  const resolved = new RefreshingCache({
    max: 10_000,
    ttlMs: 60_000,
    load: (scope) => (scope === PLATFORM ? resolvePlatform() : resolveTenant(scope)),
  });
  /** Counts the changes seen, so what others derive from these values knows when to derive it again. */
  let generation = 0;
  const unsubscribe = bus.subscribe(TOPIC, (payload) => {
    generation++;
    const scope = (payload as { scope?: string } | null)?.scope;
    if (scope && scope !== PLATFORM) {
      cache.delete(scope);
      resolved.delete(scope);
    } else {
      cache.clear();
      resolved.clear();
    }
  });

  async function stored(scope: string): Promise<Values> {
    return cache.get(scope);
  }

  async function load(scope: string): Promise<Values> {
    const rows =
      scope === PLATFORM
        ? await db.selectFrom("platform_settings").select(["key", "value"]).execute()
        : await db.selectFrom("tenant_settings").select(["key", "value"]).where("tenant_id", "=", scope).execute();
    const registry: SettingsRegistry = scope === PLATFORM ? PLATFORM_SETTINGS : TENANT_SETTINGS;
    const values: Values = {};
    for (const row of rows) if (row.key in registry) values[row.key] = JSON.parse(row.value);
    return values;
  }

  function defaults(registry: SettingsRegistry, fallback: Values = {}): Values {
    return Object.fromEntries(Object.entries(registry).map(([key, entry]) => [key, fallback[key] ?? entry.default]));
  }

  /** The platform's settings; from memory (no promise) once resolved. */
  function platform(): Maybe<Resolved> {
    return resolved.get(PLATFORM);
  }

  async function resolvePlatform(): Promise<Resolved> {
    const overrides = await stored(PLATFORM);
    return freeze({ values: { ...defaults(PLATFORM_SETTINGS), ...overrides }, overrides });
  }

  /** A tenant's settings, the platform's inherited; from memory (no promise) once resolved. */
  function tenant(tenantId: string): Maybe<Resolved> {
    return resolved.get(tenantId);
  }

  async function resolveTenant(tenantId: string): Promise<Resolved> {
    const [base, overrides] = await Promise.all([platform(), stored(tenantId)]);
    const inherited = { ...base.values, time_zone: base.values.default_time_zone };
    return freeze({ values: { ...defaults(TENANT_SETTINGS, inherited), ...overrides }, overrides });
  }

  async function write(actor: Actor, tenantId: string | null, patch: Values) {
    const now = clock.now().toISOString();
    const scope = tenantId ?? PLATFORM;
    const before = await stored(scope);
    await db.transaction().execute(async (trx) => {
      for (const [key, value] of Object.entries(patch)) {
        if (value === undefined) continue;
        if (tenantId) {
          await trx.deleteFrom("tenant_settings").where("tenant_id", "=", tenantId).where("key", "=", key).execute();
          if (value !== null) {
            await trx
              .insertInto("tenant_settings")
              .values({ tenant_id: tenantId, key, value: JSON.stringify(value), updated_at: now })
              .execute();
          }
        } else {
          await trx.deleteFrom("platform_settings").where("key", "=", key).execute();
          if (value !== null) {
            await trx
              .insertInto("platform_settings")
              .values({ key, value: JSON.stringify(value), updated_at: now })
              .execute();
          }
        }
      }
      const after = Object.fromEntries(
        Object.entries({ ...before, ...patch }).filter(([, value]) => value !== null && value !== undefined),
      );
      await audit.record(trx, actor, { tenantId, action: "settings.update", targetType: "settings", targetId: scope, before, after });
    });
    bus.publish(TOPIC, { scope });
  }

  return {
    platform,
    tenant,
    /** Changes with every change of any setting (on any instance). */
    get generation() {
      return generation;
    },
    async updatePlatform(actor: Actor, patch: Values) {
      await write(actor, null, patch);
      return platform();
    },
    async updateTenant(actor: Actor, tenantId: string, patch: Values) {
      await write(actor, tenantId, patch);
      return tenant(tenantId);
    },
    close: unsubscribe,
  };
}

export type SettingsService = ReturnType<typeof createSettingsService>;
