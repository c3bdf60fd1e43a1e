import type { FinishReason } from "../../chat-types.ts";

const KNOWN: ReadonlySet<string> = new Set<FinishReason>(["stop", "length", "tool_calls", "content_filter", "function_call"]);

/** Azure uses OpenAI's finish reasons (with `content_filter` when its filters cut the answer). */
export function mapAzureFinishReason(value: unknown): FinishReason | null {
  if (value === null || value === undefined) return null;
  return typeof value === "string" && KNOWN.has(value) ? (value as FinishReason) : "stop";
}
