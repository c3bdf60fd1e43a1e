import { names } from "../../common.ts";
import { openAICompatible } from "../openai-compatible/create.ts";

/** Baidu ERNIE through Qianfan's OpenAI-compatible API (v2), authenticated with a bearer API key. */
export const ernie = openAICompatible({
  id: "ernie",
  names: names("Baidu ERNIE (Qianfan)", "百度文心（千帆）"),
  defaultBaseUrl: "https://qianfan.baidubce.com",
  apiPrefix: "/v2",
  credentialSchema: [
    {
      name: "api_key",
      type: "secret",
      required: true,
      placeholder: "bce-v3/...",
      label: { en: "API key", "zh-CN": "API Key" },
      help: { en: "A Qianfan API key (bearer token).", "zh-CN": "千帆平台创建的 API Key。" },
    },
    {
      name: "appid",
      type: "text",
      required: false,
      label: { en: "App ID", "zh-CN": "应用 ID" },
      help: { en: "Optional appid header for application-scoped keys.", "zh-CN": "可选，按应用计费时填写。" },
    },
  ],
  unsupported: ["n", "logit_bias", "logprobs", "top_logprobs"],
  headers: (context): Record<string, string> => (context.credentials.appid ? { appid: String(context.credentials.appid) } : {}),
});
