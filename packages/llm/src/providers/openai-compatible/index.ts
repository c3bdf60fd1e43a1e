import { names } from "../../common.ts";
import { openAICompatible } from "./create.ts";

/** Any host that speaks the OpenAI API: vLLM, LM Studio, llama.cpp server, LocalAI, one-api, … */
export const genericOpenAICompatible = openAICompatible({
  id: "openai-compatible",
  names: names("OpenAI-compatible", "OpenAI 兼容"),
  defaultBaseUrl: "http://127.0.0.1:8000",
  credentialSchema: [
    {
      name: "api_key",
      type: "secret",
      required: false,
      placeholder: "sk-... (optional)",
      label: { en: "API key", "zh-CN": "API 密钥" },
      help: { en: "Leave empty for servers without authentication.", "zh-CN": "服务无需认证时留空。" },
    },
  ],
  capabilities: { streamUsage: true },
});
