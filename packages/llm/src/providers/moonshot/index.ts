import { names } from "../../common.ts";
import { openAICompatible } from "../openai-compatible/create.ts";

/** Moonshot (Kimi): OpenAI-compatible; streamed usage arrives inside the last choice. */
export const moonshot = openAICompatible({
  id: "moonshot",
  names: names("Moonshot (Kimi)", "月之暗面 Kimi"),
  defaultBaseUrl: "https://api.moonshot.cn",
  capabilities: { embeddings: false, streamUsage: false },
  unsupported: ["logit_bias", "seed", "parallel_tool_calls"],
});
