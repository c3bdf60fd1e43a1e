import type { ChatCompletion, ToolCall } from "../../chat-types.ts";
import { asRecord, asString, completionId, nowSeconds, toolCallId } from "../../common.ts";
import { convertUsage } from "./convert-usage.ts";
import { mapStopReason } from "./map-finish-reason.ts";

/**
 * An Anthropic Message as an OpenAI chat completion: text joined, tool uses as tool calls, thinking as
 * reasoning. A body without its `content` list is no message: refused with an error, as a malformed
 * answer the caller may try elsewhere.
 */
export function convertResponse(raw: unknown, fallbackModel: string): ChatCompletion {
  const body = asRecord(raw);
  if (!Array.isArray(body.content)) throw new Error("not a message: it has no content list");
  let text = "";
  let reasoning = "";
  const toolCalls: ToolCall[] = [];
  for (const block of (body.content as unknown[]).map(asRecord)) {
    if (block.type === "text") text += asString(block.text) ?? "";
    else if (block.type === "thinking") reasoning += asString(block.thinking) ?? "";
    else if (block.type === "tool_use") {
      toolCalls.push({
        id: asString(block.id) ?? toolCallId(),
        type: "function",
        function: { name: asString(block.name) ?? "", arguments: JSON.stringify(block.input ?? {}) },
      });
    }
  }
  const usage = convertUsage(body.usage);
  return {
    id: asString(body.id) ?? completionId(),
    object: "chat.completion",
    created: nowSeconds(),
    model: asString(body.model) ?? fallbackModel,
    choices: [
      {
        index: 0,
        message: {
          role: "assistant",
          content: text || (toolCalls.length ? null : ""),
          ...(toolCalls.length ? { tool_calls: toolCalls } : {}),
          ...(reasoning ? { reasoning_content: reasoning } : {}),
        },
        finish_reason: mapStopReason(body.stop_reason),
        logprobs: null,
      },
    ],
    ...(usage ? { usage } : {}),
  };
}
