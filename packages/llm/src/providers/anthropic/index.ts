import type { ChatRequest } from "../../chat-types.ts";
import { asRecord, joinUrl, names } from "../../common.ts";
import type { CallContext, ProviderSpec } from "../../spec.ts";
import { convertRequest } from "./convert-request.ts";
import { convertResponse } from "./convert-response.ts";
import { readAnthropicError } from "./errors.ts";
import { createStreamDecoder } from "./stream-decoder.ts";

export const DEFAULT_ANTHROPIC_VERSION = "2023-06-01";

function headers(context: CallContext): Record<string, string> {
  const version = context.credentials.anthropic_version;
  const result: Record<string, string> = {
    "content-type": "application/json",
    "anthropic-version": version !== undefined && version !== "" ? String(version) : DEFAULT_ANTHROPIC_VERSION,
    ...context.extraHeaders,
  };
  const key = context.credentials.api_key;
  if (key !== undefined && key !== "") result["x-api-key"] = String(key);
  return result;
}

/** Anthropic's Messages API: its own request, response, stream and error formats. */
export const anthropic: ProviderSpec = {
  id: "anthropic",
  names: names("Anthropic", "Anthropic"),
  defaultBaseUrl: "https://api.anthropic.com",
  credentialSchema: [
    {
      name: "api_key",
      type: "secret",
      required: true,
      placeholder: "sk-ant-...",
      label: { en: "API key", "zh-CN": "API 密钥" },
      help: { en: "From console.anthropic.com → API keys.", "zh-CN": "在 Anthropic 控制台的 API keys 页面创建。" },
    },
    {
      name: "anthropic_version",
      type: "text",
      required: false,
      default: DEFAULT_ANTHROPIC_VERSION,
      placeholder: DEFAULT_ANTHROPIC_VERSION,
      label: { en: "API version", "zh-CN": "API 版本" },
      help: { en: "Sent as the anthropic-version header.", "zh-CN": "作为 anthropic-version 请求头发送。" },
    },
  ],
  capabilities: {
    chat: true,
    embeddings: false,
    tools: true,
    vision: true,
    jsonMode: false,
    modelListing: true,
    streamUsage: true,
    openAIFormat: false,
  },
  streamFormat: "sse",
  chat: {
    request(body: ChatRequest, context: CallContext) {
      const { body: outgoing, warnings } = convertRequest(body, context.model);
      return {
        request: {
          method: "POST",
          url: joinUrl(context.baseUrl, "/v1/messages"),
          headers: headers(context),
          body: JSON.stringify(outgoing),
        },
        warnings,
      };
    },
    response: (body, context) => convertResponse(body, context.model),
    stream: (context) => createStreamDecoder(context.model),
  },
  models: {
    // The list is paged, 20 models a page unless asked for more.
    request: (context) => ({ method: "GET", url: joinUrl(context.baseUrl, "/v1/models?limit=1000"), headers: headers(context) }),
    response: (raw) =>
      (Array.isArray(asRecord(raw).data) ? (asRecord(raw).data as unknown[]) : [])
        .map((item) => asRecord(item).id)
        .filter((id): id is string => typeof id === "string"),
  },
  error: readAnthropicError,
};
