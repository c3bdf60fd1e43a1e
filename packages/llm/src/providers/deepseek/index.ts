import { names } from "../../common.ts";
import { openAICompatible } from "../openai-compatible/create.ts";

/** DeepSeek: OpenAI-compatible; reports cache hits as prompt_cache_hit_tokens; no images, no embeddings. */
export const deepseek = openAICompatible({
  id: "deepseek",
  names: names("DeepSeek", "深度求索"),
  defaultBaseUrl: "https://api.deepseek.com",
  capabilities: { vision: false, embeddings: false },
  unsupported: ["n", "seed", "logit_bias", "parallel_tool_calls"],
});
