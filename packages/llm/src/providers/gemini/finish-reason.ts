import type { FinishReason } from "../../chat-types.ts";

const FILTERED = new Set(["SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY"]);

/** Gemini's finish reason in OpenAI's words; a normal stop after a function call is `tool_calls`. */
export function mapGeminiFinishReason(reason: string | undefined, calledFunction: boolean): FinishReason | null {
  if (!reason) return null;
  if (reason === "MAX_TOKENS") return "length";
  if (FILTERED.has(reason)) return "content_filter";
  return calledFunction ? "tool_calls" : "stop";
}
