import type { FinishReason } from "../../chat-types.ts";
import type { AnthropicStopReason } from "./api-types.ts";

/** An Anthropic `stop_reason` as an OpenAI `finish_reason`. */
export function mapStopReason(reason: unknown): FinishReason | null {
  switch (reason) {
    case "end_turn":
    case "stop_sequence":
    case "pause_turn":
      return "stop";
    case "max_tokens":
    case "model_context_window_exceeded":
      return "length";
    case "tool_use":
      return "tool_calls";
    case "refusal":
      return "content_filter";
    case null:
    case undefined:
      return null;
    default:
      return "stop";
  }
}

/** An OpenAI `finish_reason` as an Anthropic `stop_reason`; a missing one means the turn ended. */
export function mapFinishReason(reason: FinishReason | null | undefined): AnthropicStopReason {
  switch (reason) {
    case "length":
      return "max_tokens";
    case "tool_calls":
    case "function_call":
      return "tool_use";
    case "content_filter":
      return "refusal";
    default:
      return "end_turn";
  }
}
