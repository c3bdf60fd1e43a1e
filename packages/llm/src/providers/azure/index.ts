import { FULL_CAPABILITIES, genericError, names } from "../../common.ts";
import type { ProviderSpec } from "../../spec.ts";
import { compatibleEmbeddingsResponse, compatibleModelIds } from "../openai-compatible/create.ts";
import { AZURE_DEFAULT_API_VERSION } from "./api-types.ts";
import { azureChatRequest, azureEmbeddingsRequest, azureModelsRequest } from "./convert-request.ts";
import { azureResponse } from "./convert-response.ts";
import { azureStreamDecoder } from "./stream-decoder.ts";

/** Azure OpenAI: OpenAI's API addressed by deployment, with an `api-key` header and an api-version. */
export const azure: ProviderSpec = {
  id: "azure",
  names: names("Azure OpenAI", "Azure OpenAI"),
  defaultBaseUrl: "https://YOUR-RESOURCE.openai.azure.com",
  credentialSchema: [
    {
      name: "api_key",
      type: "secret",
      required: true,
      label: { en: "API key", "zh-CN": "API 密钥" },
      help: {
        en: "KEY 1 or KEY 2 from the resource's Keys and Endpoint page.",
        "zh-CN": "Azure 门户中该资源“密钥和终结点”页面上的密钥 1 或密钥 2。",
      },
    },
    {
      name: "api_version",
      type: "text",
      required: false,
      default: AZURE_DEFAULT_API_VERSION,
      placeholder: AZURE_DEFAULT_API_VERSION,
      label: { en: "API version", "zh-CN": "API 版本" },
      help: { en: "Sent as the api-version query parameter.", "zh-CN": "作为 api-version 查询参数发送。" },
    },
    {
      name: "deployment",
      type: "text",
      required: false,
      label: { en: "Deployment", "zh-CN": "部署名称" },
      help: {
        en: "Leave empty to use the upstream model name as the deployment name.",
        "zh-CN": "留空时使用上游模型名作为部署名称。",
      },
    },
  ],
  capabilities: { ...FULL_CAPABILITIES },
  streamFormat: "sse",
  chat: {
    request: azureChatRequest,
    response: azureResponse,
    stream: azureStreamDecoder,
  },
  embeddings: {
    request: azureEmbeddingsRequest,
    response: compatibleEmbeddingsResponse,
  },
  models: {
    request: azureModelsRequest,
    response: compatibleModelIds,
  },
  error: genericError,
};
