import type { ChatRequest } from "../../chat-types.ts";
import type { GeminiRequest } from "./api-types.ts";
import { cleanParameters } from "./clean-schema.ts";

type ToolFields = Pick<GeminiRequest, "tools" | "toolConfig">;

/** OpenAI tools and tool_choice as Gemini function declarations and a function-calling mode. */
export function convertTools(body: ChatRequest, warnings: string[]): ToolFields {
  if (body.parallel_tool_calls === false) warnings.push('Gemini does not support "parallel_tool_calls": false; it was not sent');
  if (!body.tools?.length) return {};
  const functionDeclarations = body.tools.map(({ function: fn }) => {
    const parameters = cleanParameters(fn.parameters);
    return { name: fn.name, ...(fn.description ? { description: fn.description } : {}), ...(parameters ? { parameters } : {}) };
  });
  const choice = body.tool_choice;
  if (choice === undefined) return { tools: [{ functionDeclarations }] };
  const functionCallingConfig: NonNullable<GeminiRequest["toolConfig"]>["functionCallingConfig"] =
    typeof choice === "object"
      ? { mode: "ANY", allowedFunctionNames: [choice.function.name] }
      : { mode: choice === "none" ? "NONE" : choice === "required" ? "ANY" : "AUTO" };
  return { tools: [{ functionDeclarations }], toolConfig: { functionCallingConfig } };
}
