import ipaddr from "ipaddr.js";
import type { Kysely } from "kysely";
import type { AccessTokensTable, Database } from "../../db/schema.ts";
import type { EventBus } from "../../infra/bus.ts";
import type { Maybe } from "../../infra/maybe.ts";
import { RefreshingCache } from "../../infra/refreshing-cache.ts";
import { findTokenByHash, listEnabledTokens } from "./repository.ts";

export const TOKENS_TOPIC = "gateway.tokens";

export interface Limit {
  metric: "requests" | "tokens" | "cost_micro_usd";
  window: "total" | "day" | "month";
  max: number;
}

/** Limits stored as JSON text; anything unreadable counts as none. */
export function parseLimits(text: string | null | undefined): Limit[] {
  try {
    return text ? (JSON.parse(text) as Limit[]) : [];
  } catch {
    return [];
  }
}

/** An access token as the gateway checks it. */
export interface RuntimeToken {
  id: string;
  tenantId: string;
  userId: string;
  name: string;
  expiresAt: string | null;
  models: Set<string> | null;
  groups: Set<string> | null;
  ipRanges: [ipaddr.IPv4 | ipaddr.IPv6, number][];
  enabled: boolean;
  allowDryRun: boolean;
  limits: Limit[];
  rateLimits: { rpm?: number; tpm?: number };
}

export function toRuntimeToken(row: AccessTokensTable): RuntimeToken {
  const list = (text: string | null) => (text === null ? null : new Set(JSON.parse(text) as string[]));
  return {
    id: row.id,
    tenantId: row.tenant_id,
    userId: row.user_id,
    name: row.name,
    expiresAt: row.expires_at,
    models: list(row.models),
    groups: list(row.channel_groups),
    ipRanges: (JSON.parse(row.ip_allowlist) as string[]).map((entry) =>
      entry.includes("/")
        ? ipaddr.parseCIDR(entry)
        : ([ipaddr.parse(entry), ipaddr.parse(entry).kind() === "ipv4" ? 32 : 128] as [ipaddr.IPv4 | ipaddr.IPv6, number]),
    ),
    enabled: row.status === "enabled",
    allowDryRun: row.allow_dry_run === 1,
    limits: JSON.parse(row.limits) as Limit[],
    rateLimits: JSON.parse(row.rate_limits) as { rpm?: number; tpm?: number },
  };
}

/** Whether the client address is allowed by the token's list (an empty list allows every address). */
export function ipAllowed(token: RuntimeToken, address: string): boolean {
  if (token.ipRanges.length === 0) return true;
  let parsed: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    parsed = ipaddr.process(address);
  } catch {
    return false;
  }
  return token.ipRanges.some(([range, bits]) => range.kind() === parsed.kind() && parsed.match([range, bits] as never));
}

/** Tokens (and unknown keys) kept at most. */
const MAX_TOKENS = 200_000;

// The object kept is the one answered: what is derived from a token (its quota plan) is kept by it.
async function loadToken(db: Kysely<Database>, hash: string): Promise<RuntimeToken | undefined> {
  const row = await findTokenByHash(db, hash);
  return row ? toRuntimeToken(row) : undefined;
}

/**
 * Access tokens by key hash, in memory: warmed at start, filled on first use, and dropped on every
 * change through the bus. Unknown keys are remembered briefly so floods of bad keys stay off the
 * database.
 */
export function createTokenCache(db: Kysely<Database>, bus: EventBus, options: { maxTokens?: number } = {}) {
  // Known tokens stay until a change drops them or newer ones push them out; an unknown key is
  // remembered for a minute.
  const cache = new RefreshingCache({ max: options.maxTokens ?? MAX_TOKENS, missingTtlMs: 60_000, load: (hash) => loadToken(db, hash) });
  const unsubscribe = bus.subscribe(TOKENS_TOPIC, (payload) => {
    const hash = (payload as { hash?: string } | null)?.hash;
    if (hash) cache.delete(hash);
    else cache.clear();
  });
  return {
    async warm() {
      for (const row of await listEnabledTokens(db, 100_000)) cache.set(row.key_hash, toRuntimeToken(row));
    },
    /** The token with this key hash; from memory (no promise) once it has been seen. */
    byHash(hash: string): Maybe<RuntimeToken | undefined> {
      return cache.get(hash);
    },
    changed(hash: string) {
      bus.publish(TOKENS_TOPIC, { hash });
    },
    close: unsubscribe,
  };
}

export type TokenCache = ReturnType<typeof createTokenCache>;
