import { names } from "../../common.ts";
import { openAICompatible } from "../openai-compatible/create.ts";

/** Zhipu GLM: OpenAI-compatible under /api/paas/v4; tool_choice accepts only "auto". */
export const zhipu = openAICompatible({
  id: "zhipu",
  names: names("Zhipu GLM", "智谱 GLM"),
  defaultBaseUrl: "https://open.bigmodel.cn/api/paas",
  apiPrefix: "/v4",
  capabilities: { streamUsage: false },
  unsupported: ["n", "presence_penalty", "frequency_penalty", "logit_bias", "seed", "parallel_tool_calls"],
  adjustBody(body, warnings) {
    if (body.tool_choice !== undefined && body.tool_choice !== "auto") {
      warnings.push(`Zhipu GLM supports only tool_choice "auto"; "${JSON.stringify(body.tool_choice)}" was replaced`);
      body.tool_choice = "auto";
    }
    // GLM rejects temperature 0 and top_p 0 or 1: clamp into its open interval.
    if (typeof body.temperature === "number" && body.temperature <= 0) {
      warnings.push("Zhipu GLM needs temperature > 0; 0.01 was sent");
      body.temperature = 0.01;
    }
  },
});
