import type { ChatRequest, EmbeddingsRequest } from "../../chat-types.ts";
import { asRecord, keptUrls } from "../../common.ts";
import type { CallContext, TranslatedRequest, UpstreamRequest } from "../../spec.ts";
import { AZURE_DEFAULT_API_VERSION } from "./api-types.ts";

const text = (value: unknown) => (value === undefined || value === null ? "" : String(value).trim());

/** The deployment to address: the channel's configured one, else the upstream model name. */
export function azureDeployment(context: CallContext): string {
  return text(context.credentials.deployment) || context.model;
}

/** A resource's URL for a path and query: the base URL without its trailing slashes or `/openai`. */
const resourceUrl = keptUrls((baseUrl, pathAndQuery) => `${baseUrl.replace(/\/+$/, "").replace(/\/openai$/, "")}/openai${pathAndQuery}`);

/** `{resource origin}/openai{path}?api-version=…`; a base URL pasted with `/openai` works too. */
export function azureUrl(context: CallContext, path: string): string {
  const version = text(context.credentials.api_version) || AZURE_DEFAULT_API_VERSION;
  return resourceUrl(context.baseUrl, `${path}?api-version=${encodeURIComponent(version)}`);
}

const deploymentPath = (context: CallContext, operation: string) =>
  `/deployments/${encodeURIComponent(azureDeployment(context))}/${operation}`;

/** Azure authenticates with an `api-key` header, never `Authorization`. */
export function azureHeaders(context: CallContext): Record<string, string> {
  const headers: Record<string, string> = { "content-type": "application/json", ...context.extraHeaders };
  const key = text(context.credentials.api_key);
  if (key) headers["api-key"] = key;
  return headers;
}

/** The deployment in the URL names the model, so the body carries none. */
export function azureChatRequest(body: ChatRequest, context: CallContext): TranslatedRequest {
  const { model: _model, ...outgoing } = body as ChatRequest & Record<string, unknown>;
  if (body.stream) outgoing.stream_options = { ...asRecord(body.stream_options), include_usage: true };
  else delete outgoing.stream_options;
  return {
    request: {
      method: "POST",
      url: azureUrl(context, deploymentPath(context, "chat/completions")),
      headers: azureHeaders(context),
      body: JSON.stringify(outgoing),
    },
    warnings: [],
  };
}

export function azureEmbeddingsRequest(body: EmbeddingsRequest, context: CallContext): TranslatedRequest {
  const { model: _model, ...outgoing } = body;
  return {
    request: {
      method: "POST",
      url: azureUrl(context, deploymentPath(context, "embeddings")),
      headers: azureHeaders(context),
      body: JSON.stringify(outgoing),
    },
    warnings: [],
  };
}

/** The models the resource can deploy; answers 401 for a wrong key, so it also checks credentials. */
export function azureModelsRequest(context: CallContext): UpstreamRequest {
  return { method: "GET", url: azureUrl(context, "/models"), headers: azureHeaders(context) };
}
