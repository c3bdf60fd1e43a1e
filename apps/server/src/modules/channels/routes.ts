import { ZChannel, ZChannelInput, ZChannelSyncResult, ZChannelTestResult, ZChannelUpdate, ZOk, ZProvider } from "@lyss/contracts";
import { PROVIDERS } from "@lyss/llm";
import { z } from "zod";
import { actorOf, requireTenant } from "../auth/guard.ts";
import { type Api, AUTHED_ERRORS, errorResponses, ZIdParams } from "../http.ts";
import type { ChannelService } from "./service.ts";

const tags = ["channels"];
const admin = { access: { tenant: "admin" as const } };

const providerView = PROVIDERS.map((provider) => ({
  id: provider.id,
  names: provider.names,
  default_base_url: provider.defaultBaseUrl,
  capabilities: { ...provider.capabilities },
  credential_schema: provider.credentialSchema.map((field) => ({
    name: field.name,
    type: field.type,
    required: field.required,
    default: field.default ?? null,
    placeholder: field.placeholder ?? null,
    options: field.options ?? null,
    label: field.label,
    help: field.help ?? null,
  })),
}));

export function channelRoutes(app: Api, channels: ChannelService) {
  app.get(
    "/api/v1/providers",
    {
      config: { access: "user" },
      schema: {
        tags,
        summary: "The provider catalogue with each provider's credential form",
        response: { 200: z.object({ data: z.array(ZProvider) }), ...AUTHED_ERRORS },
      },
    },
    async () => ({ data: providerView }),
  );

  app.get(
    "/api/v1/channels",
    {
      config: admin,
      schema: {
        tags,
        summary: "The active tenant's channels (credentials masked)",
        response: { 200: z.object({ data: z.array(ZChannel) }), ...AUTHED_ERRORS },
      },
    },
    async (request) => ({ data: await channels.list(requireTenant(request).tenant.id) }),
  );

  app.post(
    "/api/v1/channels",
    {
      config: admin,
      schema: {
        tags,
        summary: "Add a channel: a provider's credentials with its models, priority, weight and group",
        description:
          "Credentials are validated against the provider's credential_schema and encrypted at rest; they are never returned, only masked.",
        body: ZChannelInput,
        response: { 201: ZChannel, ...AUTHED_ERRORS },
      },
    },
    async (request, reply) => reply.code(201).send(await channels.create(actorOf(request), requireTenant(request).tenant.id, request.body)),
  );

  app.get(
    "/api/v1/channels/:id",
    { config: admin, schema: { tags, summary: "Get a channel", params: ZIdParams, response: { 200: ZChannel, ...AUTHED_ERRORS } } },
    async (request) => channels.get(requireTenant(request).tenant.id, request.params.id),
  );

  app.patch(
    "/api/v1/channels/:id",
    {
      config: admin,
      schema: {
        tags,
        summary: "Change a channel; credentials given replace the stored fields of the same name",
        params: ZIdParams,
        body: ZChannelUpdate,
        response: { 200: ZChannel, ...AUTHED_ERRORS },
      },
    },
    async (request) => channels.update(actorOf(request), requireTenant(request).tenant.id, request.params.id, request.body),
  );

  app.delete(
    "/api/v1/channels/:id",
    { config: admin, schema: { tags, summary: "Delete a channel", params: ZIdParams, response: { 200: ZOk, ...AUTHED_ERRORS } } },
    async (request) => {
      await channels.remove(actorOf(request), requireTenant(request).tenant.id, request.params.id);
      return { ok: true as const };
    },
  );

  app.post(
    "/api/v1/channels/:id/test",
    {
      config: admin,
      schema: {
        tags,
        summary: "Send a minimal real request through the channel",
        params: ZIdParams,
        body: z.strictObject({ model: z.string().min(1).max(200).optional() }).nullish(),
        response: { 200: ZChannelTestResult, ...AUTHED_ERRORS, ...errorResponses(422) },
      },
    },
    async (request) => channels.test(requireTenant(request).tenant.id, request.params.id, request.body?.model),
  );

  app.post(
    "/api/v1/channels/:id/sync-models",
    {
      config: admin,
      schema: {
        tags,
        summary: "Replace the channel's model list with the upstream's",
        params: ZIdParams,
        body: z.strictObject({}).nullish(),
        response: { 200: ZChannelSyncResult, ...AUTHED_ERRORS, ...errorResponses(422) },
      },
    },
    async (request) => channels.sync(actorOf(request), requireTenant(request).tenant.id, request.params.id),
  );
}
