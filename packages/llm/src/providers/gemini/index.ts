import { FULL_CAPABILITIES, names } from "../../common.ts";
import type { ProviderSpec } from "../../spec.ts";
import { geminiChatRequest } from "./convert-request.ts";
import { geminiResponse } from "./convert-response.ts";
import { geminiEmbeddingsRequest, geminiEmbeddingsResponse } from "./embeddings.ts";
import { geminiError } from "./error.ts";
import { geminiModelNames, geminiModelsRequest } from "./models.ts";
import { geminiStreamDecoder } from "./stream-decoder.ts";

/** Google Gemini through its native API (generateContent), authenticated with an API key. */
export const gemini: ProviderSpec = {
  id: "gemini",
  names: names("Google Gemini", "Google Gemini"),
  defaultBaseUrl: "https://generativelanguage.googleapis.com",
  credentialSchema: [
    {
      name: "api_key",
      type: "secret",
      required: true,
      placeholder: "AIza...",
      label: { en: "API key", "zh-CN": "API 密钥" },
      help: { en: "From Google AI Studio → Get API key.", "zh-CN": "在 Google AI Studio 的 Get API key 页面创建。" },
    },
  ],
  capabilities: { ...FULL_CAPABILITIES },
  streamFormat: "sse",
  chat: {
    request: geminiChatRequest,
    response: geminiResponse,
    stream: geminiStreamDecoder,
  },
  embeddings: {
    request: geminiEmbeddingsRequest,
    response: geminiEmbeddingsResponse,
  },
  models: {
    request: geminiModelsRequest,
    response: geminiModelNames,
  },
  error: geminiError,
};
