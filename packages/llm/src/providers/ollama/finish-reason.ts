import type { FinishReason } from "../../chat-types.ts";

/** Ollama's done_reason in OpenAI's words; a normal stop after a tool call is `tool_calls`. */
export function mapOllamaFinishReason(reason: string | undefined, calledTool: boolean): FinishReason {
  if (reason === "length") return "length";
  return calledTool ? "tool_calls" : "stop";
}
