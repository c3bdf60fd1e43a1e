import { getProvider, type ProviderSpec } from "@lyss/llm";
import type { Kysely } from "kysely";
import type { ChannelsTable, Database } from "../../db/schema.ts";
import type { EventBus } from "../../infra/bus.ts";
import { type Limit, parseLimits } from "../tokens/token-cache.ts";
import { openCredentials } from "./credentials.ts";
import { listAllChannels, listChannels } from "./repository.ts";

export const CHANNELS_TOPIC = "gateway.channels";

/** A channel as the gateway uses it: decrypted, parsed, ready to route to. */
export interface RuntimeChannel {
  id: string;
  tenantId: string;
  name: string;
  provider: ProviderSpec;
  baseUrl: string;
  credentials: Record<string, string | number>;
  /** Public model names this channel serves (its models plus its mapping's keys). */
  models: Set<string>;
  mapping: Record<string, string>;
  priority: number;
  weight: number;
  group: string;
  status: ChannelsTable["status"];
  statusReason: string | null;
  timeoutMs: number;
  firstByteTimeoutMs: number;
  extraHeaders: Record<string, string>;
  limits: Limit[];
}

function toRuntime(row: ChannelsTable, key: Buffer): RuntimeChannel | undefined {
  const provider = getProvider(row.provider);
  if (!provider) return undefined;
  const mapping = JSON.parse(row.model_mapping) as Record<string, string>;
  return {
    id: row.id,
    tenantId: row.tenant_id,
    name: row.name,
    provider,
    baseUrl: row.base_url,
    credentials: openCredentials(key, row.id, row.credentials_sealed),
    models: new Set([...(JSON.parse(row.models) as string[]), ...Object.keys(mapping)]),
    mapping,
    priority: row.priority,
    weight: row.weight,
    group: row.group_name,
    status: row.status,
    statusReason: row.status_reason,
    timeoutMs: row.timeout_ms,
    firstByteTimeoutMs: row.first_byte_timeout_ms,
    extraHeaders: JSON.parse(row.extra_headers) as Record<string, string>,
    limits: parseLimits(row.limits),
  };
}

/**
 * Every tenant's channels in memory, loaded at start and reloaded for a tenant when any instance
 * changes one of its channels. Requests read the snapshot; they never query the database unless a
 * reload for their tenant is still under way.
 */
export function createChannelCatalog(db: Kysely<Database>, bus: EventBus, key: Buffer) {
  const tenants = new Map<string, RuntimeChannel[] | Promise<RuntimeChannel[]>>();

  const rows = (list: ChannelsTable[]) => list.map((row) => toRuntime(row, key)).filter((channel) => channel !== undefined);

  function reload(tenantId: string) {
    const loading = listChannels(db, tenantId).then((list) => {
      const channels = rows(list);
      if (tenants.get(tenantId) === loading) tenants.set(tenantId, channels);
      return channels;
    });
    tenants.set(tenantId, loading);
    loading.catch(() => tenants.delete(tenantId));
    return loading;
  }

  const unsubscribe = bus.subscribe(CHANNELS_TOPIC, (payload) => {
    const tenantId = (payload as { tenantId?: string } | null)?.tenantId;
    if (tenantId) void reload(tenantId).catch(() => undefined);
    else tenants.clear();
  });

  return {
    async warm(): Promise<void> {
      const byTenant = new Map<string, ChannelsTable[]>();
      for (const row of await listAllChannels(db)) byTenant.set(row.tenant_id, [...(byTenant.get(row.tenant_id) ?? []), row]);
      for (const [tenantId, list] of byTenant) tenants.set(tenantId, rows(list));
    },
    /** The tenant's channels; synchronous in the steady state. */
    channels(tenantId: string): RuntimeChannel[] | Promise<RuntimeChannel[]> {
      return tenants.get(tenantId) ?? reload(tenantId);
    },
    changed(tenantId: string) {
      bus.publish(CHANNELS_TOPIC, { tenantId });
    },
    close: unsubscribe,
  };
}

export type ChannelCatalog = ReturnType<typeof createChannelCatalog>;
