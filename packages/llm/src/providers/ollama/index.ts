import { FULL_CAPABILITIES, genericError, names } from "../../common.ts";
import type { ProviderSpec } from "../../spec.ts";
import { ollamaChatRequest, ollamaEmbeddingsRequest, ollamaModelsRequest } from "./convert-request.ts";
import { ollamaEmbeddingsResponse, ollamaModelNames, ollamaResponse } from "./convert-response.ts";
import { ollamaStreamDecoder } from "./stream-decoder.ts";

/** Ollama through its native API (`/api/chat`), which streams newline-delimited JSON. */
export const ollama: ProviderSpec = {
  id: "ollama",
  names: names("Ollama", "Ollama"),
  defaultBaseUrl: "http://127.0.0.1:11434",
  credentialSchema: [
    {
      name: "api_key",
      type: "secret",
      required: false,
      placeholder: "(optional)",
      label: { en: "API key", "zh-CN": "API 密钥" },
      help: {
        en: "Leave empty for a plain Ollama; set it when a proxy in front of Ollama wants a bearer token.",
        "zh-CN": "直连 Ollama 时留空；Ollama 前有需要 Bearer 令牌的代理时填写。",
      },
    },
  ],
  capabilities: { ...FULL_CAPABILITIES },
  streamFormat: "ndjson",
  chat: {
    request: ollamaChatRequest,
    response: ollamaResponse,
    stream: ollamaStreamDecoder,
  },
  embeddings: {
    request: ollamaEmbeddingsRequest,
    response: ollamaEmbeddingsResponse,
  },
  models: {
    request: ollamaModelsRequest,
    response: ollamaModelNames,
  },
  error: genericError,
};
