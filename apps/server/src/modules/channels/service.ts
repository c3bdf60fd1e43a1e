import type { TChannel } from "@lyss/contracts";
import { getProvider, type ProviderSpec } from "@lyss/llm";
import type { ChannelsTable } from "../../db/schema.ts";
import { AppError, notFound } from "../../errors/app-error.ts";
import { newId } from "../../infra/ids.ts";
import { type Actor, SYSTEM_ACTOR } from "../audit/service.ts";
import type { ServiceDeps } from "../deps.ts";
import type { UpstreamClient } from "../gateway/upstream.ts";
import type { QuotaService } from "../quota/service.ts";
import { type Limit, parseLimits } from "../tokens/token-cache.ts";
import type { ChannelCatalog } from "./catalog.ts";
import { maskCredentials, normalizeBaseUrl, openCredentials, sealCredentials, validateCredentials } from "./credentials.ts";
import { deleteChannel, findChannel, insertChannel, listChannels, setChannelStatus, updateChannel } from "./repository.ts";

export interface ChannelInput {
  name: string;
  provider: string;
  base_url?: string | undefined;
  credentials: Record<string, string | number>;
  models: string[];
  model_mapping: Record<string, string>;
  priority: number;
  weight: number;
  group: string;
  status: "enabled" | "disabled" | "auto_disabled";
  timeout_ms: number;
  first_byte_timeout_ms: number;
  extra_headers: Record<string, string>;
  limits: Limit[];
}

function requireProvider(id: string): ProviderSpec {
  const provider = getProvider(id);
  if (!provider) {
    throw new AppError("validation_failed", `invalid input: body.provider`, {
      fields: [{ field: "body.provider", message: `unknown provider "${id}"` }],
    });
  }
  return provider;
}

type ChannelConfig = Omit<TChannel, "limits"> & { limits: Limit[] };

export function createChannelService(
  deps: ServiceDeps & { key: Buffer; catalog: ChannelCatalog; upstream: UpstreamClient; quota: QuotaService },
) {
  const { db, clock, audit, key, catalog } = deps;

  /** The channel as the API shows it, its limits with what is used and reserved. */
  async function present(row: ChannelsTable): Promise<TChannel> {
    const view = toView(row);
    return { ...view, limits: await deps.quota.status("channel", row.id, row.tenant_id, view.limits) };
  }

  function toView(row: ChannelsTable): ChannelConfig {
    const provider = getProvider(row.provider);
    const credentials = openCredentials(key, row.id, row.credentials_sealed);
    return {
      id: row.id,
      name: row.name,
      provider: row.provider,
      base_url: row.base_url,
      credentials: provider ? maskCredentials(provider, credentials) : {},
      models: JSON.parse(row.models) as string[],
      model_mapping: JSON.parse(row.model_mapping) as Record<string, string>,
      priority: row.priority,
      weight: row.weight,
      group: row.group_name,
      status: row.status,
      status_reason: row.status_reason,
      timeout_ms: row.timeout_ms,
      first_byte_timeout_ms: row.first_byte_timeout_ms,
      extra_headers: JSON.parse(row.extra_headers) as Record<string, string>,
      limits: parseLimits(row.limits),
      created_at: row.created_at,
      updated_at: row.updated_at,
    };
  }

  async function requireRow(tenantId: string, id: string) {
    const row = await findChannel(db, tenantId, id);
    if (!row) throw notFound("channel");
    return row;
  }

  function rowOf(id: string, tenantId: string, input: ChannelInput, provider: ProviderSpec, createdAt: string): ChannelsTable {
    const credentials = validateCredentials(provider, input.credentials);
    return {
      id,
      tenant_id: tenantId,
      name: input.name,
      provider: provider.id,
      base_url: normalizeBaseUrl(input.base_url ?? provider.defaultBaseUrl),
      credentials_sealed: sealCredentials(key, id, credentials),
      credentials_masked: JSON.stringify(maskCredentials(provider, credentials)),
      models: JSON.stringify([...new Set(input.models)]),
      model_mapping: JSON.stringify(input.model_mapping),
      priority: input.priority,
      weight: input.weight,
      group_name: input.group,
      status: input.status,
      status_reason: null,
      timeout_ms: input.timeout_ms,
      first_byte_timeout_ms: input.first_byte_timeout_ms,
      extra_headers: JSON.stringify(input.extra_headers),
      limits: JSON.stringify(input.limits),
      created_at: createdAt,
      updated_at: clock.now().toISOString(),
    };
  }

  async function inputOf(tenantId: string, id: string) {
    const row = await requireRow(tenantId, id);
    return {
      row,
      input: {
        name: row.name,
        provider: row.provider,
        base_url: row.base_url,
        credentials: openCredentials(key, row.id, row.credentials_sealed),
        models: JSON.parse(row.models) as string[],
        model_mapping: JSON.parse(row.model_mapping) as Record<string, string>,
        priority: row.priority,
        weight: row.weight,
        group: row.group_name,
        status: row.status,
        timeout_ms: row.timeout_ms,
        first_byte_timeout_ms: row.first_byte_timeout_ms,
        extra_headers: JSON.parse(row.extra_headers) as Record<string, string>,
        limits: parseLimits(row.limits),
      } satisfies ChannelInput,
    };
  }

  async function update(actor: Actor, tenantId: string, id: string, patch: Partial<ChannelInput>): Promise<TChannel> {
    const { row: before, input } = await inputOf(tenantId, id);
    const provider = requireProvider(before.provider);
    const masked = JSON.parse(before.credentials_masked) as Record<string, string>;
    // Fields sent back exactly as masked keep their stored value.
    const credentials = { ...input.credentials };
    for (const [name, value] of Object.entries(patch.credentials ?? {})) if (masked[name] !== value) credentials[name] = value;
    const merged = { ...input, ...Object.fromEntries(Object.entries(patch).filter(([, value]) => value !== undefined)), credentials };
    const after = rowOf(id, tenantId, merged, provider, before.created_at);
    if (patch.status === undefined && before.status === "auto_disabled") after.status = "auto_disabled";
    after.status_reason = after.status === before.status ? before.status_reason : null;
    await db.transaction().execute(async (trx) => {
      await updateChannel(trx, tenantId, id, after);
      await audit.record(trx, actor, {
        tenantId,
        action: "channel.update",
        targetType: "channel",
        targetId: id,
        before: toView(before),
        after: toView(after),
      });
    });
    catalog.changed(tenantId);
    return present(after);
  }

  return {
    update,

    async list(tenantId: string) {
      return Promise.all((await listChannels(db, tenantId)).map(present));
    },

    async get(tenantId: string, id: string) {
      return present(await requireRow(tenantId, id));
    },

    async create(actor: Actor, tenantId: string, input: ChannelInput): Promise<TChannel> {
      const provider = requireProvider(input.provider);
      const now = clock.now().toISOString();
      const row = rowOf(newId(), tenantId, input, provider, now);
      await db.transaction().execute(async (trx) => {
        await insertChannel(trx, row);
        await audit.record(trx, actor, { tenantId, action: "channel.create", targetType: "channel", targetId: row.id, after: toView(row) });
      });
      catalog.changed(tenantId);
      return present(row);
    },

    async remove(actor: Actor, tenantId: string, id: string) {
      await db.transaction().execute(async (trx) => {
        const before = await findChannel(trx, tenantId, id);
        if (!before) throw notFound("channel");
        await deleteChannel(trx, tenantId, id);
        await audit.record(trx, actor, { tenantId, action: "channel.delete", targetType: "channel", targetId: id, before: toView(before) });
      });
      catalog.changed(tenantId);
    },

    /**
     * Sends a minimal real chat request through the channel; answers the latency or the upstream's error.
     * The scheduled health probes run this same check (with a signal that ends it on shutdown).
     */
    async test(tenantId: string, id: string, model?: string, options: { signal?: AbortSignal } = {}) {
      const { row, input } = await inputOf(tenantId, id);
      const provider = requireProvider(row.provider);
      const publicModel = model ?? input.models[0] ?? Object.keys(input.model_mapping)[0];
      if (!publicModel) throw new AppError("unprocessable", "the channel lists no model to test; pass one");
      const upstreamModel = input.model_mapping[publicModel] ?? publicModel;
      const context = { baseUrl: row.base_url, credentials: input.credentials, model: upstreamModel, extraHeaders: input.extra_headers };
      const { request } = provider.chat.request(
        { model: upstreamModel, messages: [{ role: "user", content: "ping" }], max_tokens: 8, stream: false },
        context,
      );
      const started = performance.now();
      try {
        const response = await deps.upstream.send(request, {
          firstByteMs: row.first_byte_timeout_ms,
          signal: options.signal
            ? AbortSignal.any([options.signal, AbortSignal.timeout(row.timeout_ms)])
            : AbortSignal.timeout(row.timeout_ms),
        });
        const text = await response.body.text();
        const latency = Math.round(performance.now() - started);
        if (response.statusCode >= 400) {
          return {
            ok: false,
            latency_ms: latency,
            model: publicModel,
            status: response.statusCode,
            error: provider.error(response.statusCode, text).message,
          };
        }
        provider.chat.response(JSON.parse(text), context);
        return { ok: true, latency_ms: latency, model: publicModel, status: response.statusCode, error: null };
      } catch (error) {
        return {
          ok: false,
          latency_ms: Math.round(performance.now() - started),
          model: publicModel,
          status: null,
          error: (error as Error).message,
        };
      }
    },

    /**
     * A status change the system makes on its own (auto-disable on refused credentials, re-enable after
     * a passing probe): only from the expected status, audited with the system actor, and published so
     * every instance's catalogue reloads. Answers whether it changed anything.
     */
    async setStatusBySystem(
      tenantId: string,
      id: string,
      change: { from: ChannelsTable["status"]; to: ChannelsTable["status"]; reason: string | null },
    ): Promise<boolean> {
      const changed = await db.transaction().execute(async (trx) => {
        const before = await findChannel(trx, tenantId, id);
        if (!before || before.status !== change.from) return false;
        const updatedAt = clock.now().toISOString();
        if ((await setChannelStatus(trx, tenantId, id, { ...change, updatedAt })) === 0) return false;
        const after = { ...before, status: change.to, status_reason: change.reason, updated_at: updatedAt };
        await audit.record(trx, SYSTEM_ACTOR, {
          tenantId,
          action: change.to === "auto_disabled" ? "channel.auto_disable" : "channel.auto_enable",
          targetType: "channel",
          targetId: id,
          before: toView(before),
          after: toView(after),
        });
        return true;
      });
      if (changed) catalog.changed(tenantId);
      return changed;
    },

    /** Replaces the channel's model list with what the upstream lists. */
    async sync(actor: Actor, tenantId: string, id: string) {
      const { row, input } = await inputOf(tenantId, id);
      const provider = requireProvider(row.provider);
      if (!provider.models) throw new AppError("unprocessable", `${provider.names.en} cannot list its models`);
      const request = provider.models.request({
        baseUrl: row.base_url,
        credentials: input.credentials,
        model: "",
        extraHeaders: input.extra_headers,
      });
      let models: string[];
      try {
        const response = await deps.upstream.send(request, {
          firstByteMs: row.first_byte_timeout_ms,
          signal: AbortSignal.timeout(row.timeout_ms),
        });
        const text = await response.body.text();
        if (response.statusCode >= 400) throw new Error(provider.error(response.statusCode, text).message);
        models = provider.models.response(JSON.parse(text));
      } catch (error) {
        throw new AppError("unprocessable", `the upstream did not list its models: ${(error as Error).message}`);
      }
      const channel = await update(actor, tenantId, id, { models });
      return { models, channel };
    },
  };
}

export type ChannelService = ReturnType<typeof createChannelService>;
