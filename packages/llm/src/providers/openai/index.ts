import { names } from "../../common.ts";
import { openAICompatible } from "../openai-compatible/create.ts";

export const openai = openAICompatible({
  id: "openai",
  names: names("OpenAI", "OpenAI"),
  defaultBaseUrl: "https://api.openai.com",
  credentialSchema: [
    {
      name: "api_key",
      type: "secret",
      required: true,
      placeholder: "sk-...",
      label: { en: "API key", "zh-CN": "API 密钥" },
      help: { en: "From platform.openai.com → API keys.", "zh-CN": "在 OpenAI 平台的 API keys 页面创建。" },
    },
    {
      name: "organization",
      type: "text",
      required: false,
      placeholder: "org-...",
      label: { en: "Organization", "zh-CN": "组织 ID" },
      help: { en: "Optional OpenAI-Organization header.", "zh-CN": "可选，作为 OpenAI-Organization 请求头发送。" },
    },
  ],
  headers: (context): Record<string, string> => {
    const organization = context.credentials.organization;
    return organization ? { "openai-organization": String(organization) } : {};
  },
});
