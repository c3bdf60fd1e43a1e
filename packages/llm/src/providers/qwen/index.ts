import { names } from "../../common.ts";
import { openAICompatible } from "../openai-compatible/create.ts";

/** Alibaba Qwen through DashScope's OpenAI-compatible mode. */
export const qwen = openAICompatible({
  id: "qwen",
  names: names("Qwen (DashScope)", "通义千问（百炼）"),
  defaultBaseUrl: "https://dashscope.aliyuncs.com/compatible-mode",
  unsupported: ["logit_bias", "logprobs", "top_logprobs"],
});
