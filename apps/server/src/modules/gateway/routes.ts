import { anthropicRequestToOpenAI, type ChatRequest, type EmbeddingsRequest, requestJson } from "@lyss/llm";
import type { FastifyReply, FastifyRequest } from "fastify";
import { hasZodFastifySchemaValidationErrors } from "fastify-type-provider-zod";
import { z } from "zod";
import { after, type Maybe } from "../../infra/maybe.ts";
import type { RuntimeChannel } from "../channels/catalog.ts";
import type { Api } from "../http.ts";
import { admitCall } from "../quota/admission.ts";
import type { RuntimeToken } from "../tokens/token-cache.ts";
import { contextFor } from "./attempt.ts";
import type { ChatCall, RelayDeps } from "./call.ts";
import { relayEmbeddings } from "./embeddings-relay.ts";
import { GatewayError } from "./gateway-error.ts";
import { type InboundProtocol, openAIInbound } from "./inbound.ts";
import { anthropicInbound } from "./inbound-anthropic.ts";
import { relayChat } from "./relay.ts";
import {
  ZAnthropicError,
  ZChatBody,
  ZEmbeddingsBody,
  ZMessagesBody,
  ZModelHealth,
  ZModelList,
  ZModelObject,
  ZOpenAIError,
} from "./schemas.ts";
import { type GatewayService, maskHeaders } from "./service.ts";

declare module "fastify" {
  interface FastifyContextConfig {
    /** The client protocol of a data-plane route, which shapes its errors. */
    inbound?: InboundProtocol;
  }
}

const tags = ["gateway"];
const security = [{ apiKey: [] }];
const errors = {
  400: ZOpenAIError,
  401: ZOpenAIError,
  403: ZOpenAIError,
  404: ZOpenAIError,
  429: ZOpenAIError,
  502: ZOpenAIError,
  503: ZOpenAIError,
  504: ZOpenAIError,
};

const header = (request: FastifyRequest, name: string) => {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
};

/** Errors of data-plane routes in their protocol's shape, validation errors included. */
export function dataPlaneErrors(error: Error, request: FastifyRequest, reply: FastifyReply) {
  const inbound = request.routeOptions.config.inbound ?? openAIInbound;
  if (error instanceof GatewayError) {
    if (error.headers) reply.headers(error.headers);
    return reply.code(error.status).send(inbound.errorBody(error.status, error.message, error.code, error.type));
  }
  if (hasZodFastifySchemaValidationErrors(error)) {
    const first = error.validation[0];
    const field = first?.instancePath.split("/").filter(Boolean).join(".") || error.validationContext || "body";
    return reply
      .code(400)
      .send(
        inbound.errorBody(400, `Invalid value for '${field}': ${first?.message ?? "invalid"}`, "invalid_request", "invalid_request_error"),
      );
  }
  const status = (error as { statusCode?: number }).statusCode ?? 500;
  if (status < 500) return reply.code(status).send(inbound.errorBody(status, error.message, (error as { code?: string }).code ?? null));
  request.log.error({ err: error }, "gateway error");
  return reply.code(500).send(inbound.errorBody(500, `internal error (request ${request.id})`));
}

/**
 * The request's token and the channels to try for `model`. Each step answers from memory in the
 * steady state, so there is a promise to await only on a cache miss or with a shared store.
 */
function chosenFor(
  service: GatewayService,
  request: FastifyRequest,
  model: string,
): Maybe<{ token: RuntimeToken; candidates: RuntimeChannel[] }> {
  return after(service.authenticate(request), (token) =>
    after(service.candidates(token, model, header(request, "x-lyss-tag")), (candidates) => ({ token, candidates })),
  );
}

/** Shared by every chat-shaped endpoint: authenticate, choose candidates, dry-run or relay. */
export async function handleChat(
  service: GatewayService,
  relay: RelayDeps,
  request: FastifyRequest,
  reply: FastifyReply,
  input: { body: ChatRequest; rawBody?: Uint8Array | undefined; inbound: InboundProtocol; endpoint: string; warnings: string[] },
) {
  const chosen = chosenFor(service, request, input.body.model);
  const { token, candidates } = chosen instanceof Promise ? await chosen : chosen;
  const call: ChatCall = {
    token,
    publicModel: input.body.model,
    body: input.body,
    rawBody: input.rawBody,
    candidates,
    inbound: input.inbound,
    endpoint: input.endpoint,
    requestId: request.id,
    warnings: input.warnings,
    reply,
    // Set at admission; spelled here so that every call has one hidden class (see Outcome).
    billing: undefined,
    recorded: false,
    attempting: undefined,
  };
  if (header(request, "x-lyss-dry-run") === "1") {
    if (!token.allowDryRun)
      throw new GatewayError(403, "Dry runs are not enabled for this API key.", "dry_run_not_allowed", "permission_error");
    const channel = candidates[0];
    if (!channel) throw new GatewayError(503, "No available channel.", "no_available_channel");
    const translated = channel.provider.chat.request(input.body, contextFor(channel, call.publicModel, call.rawBody));
    return reply.send({
      dry_run: true,
      channel: { id: channel.id, name: channel.name, provider: channel.provider.id, group: channel.group, priority: channel.priority },
      candidates: candidates.map((candidate) => candidate.id),
      upstream_request: {
        method: translated.request.method,
        url: translated.request.url,
        headers: maskHeaders(translated.request.headers),
        body: requestJson(translated.request) ?? null,
      },
      warnings: [...input.warnings, ...translated.warnings],
    });
  }
  const admission = admitCall(relay, token, input.body, candidates);
  const admitted = admission instanceof Promise ? await admission : admission;
  reply.headers(admitted.headers);
  call.candidates = admitted.candidates;
  call.billing = admitted.billing;
  return relayChat(relay, call);
}

/** The OpenAI-compatible data plane: /v1/chat/completions, /v1/embeddings, /v1/models. */
export function openAIRoutes(app: Api, service: GatewayService, relay: RelayDeps) {
  const config = { access: "public" as const, inbound: openAIInbound };

  app.post(
    "/v1/chat/completions",
    {
      config,
      schema: {
        tags,
        security,
        summary: "OpenAI-compatible chat completions, plain or streamed, routed to any channel serving the model",
        description:
          "Authenticate with `Authorization: Bearer sk-…` or `x-api-key`. `X-Lyss-Dry-Run: 1` (if the token allows it) answers the chosen channel and the translated upstream request without sending it; `X-Lyss-Tag` selects routing rules. Parameters a provider cannot honour are listed in the `x-lyss-warnings` response header. A body whose field names (at the top or in `stream_options`) differ only in letter case is refused with a 400.",
        body: ZChatBody,
        response: { 200: z.unknown(), ...errors },
      },
    },
    async (request, reply) =>
      handleChat(service, relay, request, reply, {
        body: request.body as unknown as ChatRequest,
        rawBody: request.rawJson,
        inbound: openAIInbound,
        endpoint: "chat",
        warnings: [],
      }),
  );

  app.post(
    "/v1/embeddings",
    {
      config,
      schema: {
        tags,
        security,
        summary: "OpenAI-compatible embeddings",
        description: "A body whose field names differ only in letter case is refused with a 400.",
        body: ZEmbeddingsBody,
        response: { 200: z.unknown(), ...errors },
      },
    },
    async (request, reply) => {
      const body = request.body as unknown as EmbeddingsRequest;
      const chosen = chosenFor(service, request, body.model);
      const { token, candidates } = chosen instanceof Promise ? await chosen : chosen;
      const call: ChatCall = {
        token,
        publicModel: body.model,
        body: { model: body.model, messages: [] },
        rawBody: request.rawJson,
        candidates,
        inbound: openAIInbound,
        endpoint: "embeddings",
        requestId: request.id,
        warnings: [],
        reply,
        billing: undefined,
        recorded: false,
        attempting: undefined,
      };
      const text = (Array.isArray(body.input) ? body.input : [body.input]).map(String).join("\n");
      const estimateBody = { model: body.model, messages: [{ role: "user" as const, content: text }], max_tokens: 0 };
      const admission = admitCall(relay, token, estimateBody, candidates);
      const admitted = admission instanceof Promise ? await admission : admission;
      reply.headers(admitted.headers);
      call.candidates = admitted.candidates;
      call.billing = admitted.billing;
      return relayEmbeddings(relay, call, body);
    },
  );

  app.get(
    "/v1/models",
    {
      config,
      schema: {
        tags,
        security,
        summary: "The models this API key may use (public names, mapped ones included)",
        response: { 200: ZModelList, ...errors },
      },
    },
    async (request) => {
      const token = await service.authenticate(request);
      const models = await service.models(token);
      return {
        object: "list" as const,
        data: [...models.entries()]
          .sort(([a], [b]) => a.localeCompare(b))
          .map(([id, channels]) => ({ id, object: "model" as const, created: 0, owned_by: channels[0]?.provider.id ?? "lyss" })),
      };
    },
  );

  app.get(
    "/v1/models/health",
    {
      config,
      schema: { tags, security, summary: "Each model's channels and their live health", response: { 200: ZModelHealth, ...errors } },
    },
    async (request) => ({ object: "list" as const, data: await service.health(await service.authenticate(request)) }),
  );

  app.get(
    "/v1/models/*",
    {
      config,
      schema: {
        tags,
        security,
        summary: "One model, if this API key may use it",
        params: z.object({ "*": z.string().min(1).max(200) }),
        response: { 200: ZModelObject, ...errors },
      },
    },
    async (request) => {
      const token = await service.authenticate(request);
      const model = request.params["*"];
      const channels = (await service.models(token)).get(model);
      if (!channels) throw new GatewayError(404, `The model '${model}' does not exist`, "model_not_found");
      return { id: model, object: "model" as const, created: 0, owned_by: channels[0]?.provider.id ?? "lyss" };
    },
  );
}

/** The Anthropic Messages endpoint: any Anthropic client reaches any channel serving the model. */
export function anthropicRoutes(app: Api, service: GatewayService, relay: RelayDeps) {
  const anthropicErrors = {
    400: ZAnthropicError,
    401: ZAnthropicError,
    403: ZAnthropicError,
    404: ZAnthropicError,
    429: ZAnthropicError,
    502: ZAnthropicError,
    503: ZAnthropicError,
    504: ZAnthropicError,
  };
  app.post(
    "/v1/messages",
    {
      config: { access: "public" as const, inbound: anthropicInbound },
      schema: {
        tags,
        security,
        summary: "Anthropic-compatible Messages API, plain or streamed, with tools, routed to any provider",
        description:
          "Authenticate with `x-api-key: sk-…` (or a bearer token). Answers and errors follow Anthropic's format whatever the upstream.",
        body: ZMessagesBody,
        response: { 200: z.unknown(), ...anthropicErrors },
      },
    },
    async (request, reply) => {
      const converted = anthropicRequestToOpenAI(request.body);
      return handleChat(service, relay, request, reply, {
        body: converted.request,
        inbound: anthropicInbound,
        endpoint: "messages",
        warnings: converted.warnings,
      });
    },
  );
}
