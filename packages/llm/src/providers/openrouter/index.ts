import { API_KEY_FIELD, names } from "../../common.ts";
import { openAICompatible } from "../openai-compatible/create.ts";

/** OpenRouter: OpenAI-compatible under /api/v1, with optional attribution headers. */
export const openrouter = openAICompatible({
  id: "openrouter",
  names: names("OpenRouter", "OpenRouter"),
  defaultBaseUrl: "https://openrouter.ai/api",
  credentialSchema: [
    { ...API_KEY_FIELD, placeholder: "sk-or-..." },
    {
      name: "site_url",
      type: "text",
      required: false,
      placeholder: "https://example.com",
      label: { en: "Site URL", "zh-CN": "站点 URL" },
      help: { en: "Sent as HTTP-Referer for OpenRouter rankings.", "zh-CN": "作为 HTTP-Referer 发送。" },
    },
    {
      name: "site_name",
      type: "text",
      required: false,
      label: { en: "Site name", "zh-CN": "站点名称" },
      help: { en: "Sent as X-Title.", "zh-CN": "作为 X-Title 发送。" },
    },
  ],
  headers: (context) => {
    const headers: Record<string, string> = {};
    if (context.credentials.site_url) headers["http-referer"] = String(context.credentials.site_url);
    if (context.credentials.site_name) headers["x-title"] = String(context.credentials.site_name);
    return headers;
  },
});
