import type { ChatCompletion, ToolCall } from "../../chat-types.ts";
import { asRecord, completionId, isRecord, nowSeconds, toolCallId } from "../../common.ts";
import type { CallContext } from "../../spec.ts";
import type { GeminiPart, GeminiResponse } from "./api-types.ts";
import { geminiUsage } from "./convert-usage.ts";
import { mapGeminiFinishReason } from "./finish-reason.ts";

export interface ReadParts {
  text: string;
  reasoning: string;
  calls: ToolCall[];
}

/** A candidate's parts as answer text, reasoning text (thought parts) and tool calls. */
export function readParts(parts: GeminiPart[] | undefined): ReadParts {
  const read: ReadParts = { text: "", reasoning: "", calls: [] };
  for (const part of parts ?? []) {
    if (part.functionCall) {
      const { id, name, args } = part.functionCall;
      read.calls.push({ id: id || toolCallId(), type: "function", function: { name, arguments: JSON.stringify(args ?? {}) } });
    } else if (typeof part.text === "string") {
      if (part.thought) read.reasoning += part.text;
      else read.text += part.text;
    }
  }
  return read;
}

export const responseIdOf = (body: GeminiResponse) => (body.responseId ? `chatcmpl-${body.responseId}` : completionId());

/**
 * A Gemini answer as an OpenAI chat completion, one choice per candidate. A body with neither
 * candidates nor the reason its prompt was blocked is no answer: refused with an error, as a
 * malformed answer the caller may try elsewhere.
 */
export function geminiResponse(raw: unknown, context: CallContext): ChatCompletion {
  const body = asRecord(raw) as GeminiResponse;
  const candidates: unknown = body.candidates;
  const listed = Array.isArray(candidates) && candidates.length > 0 && candidates.every(isRecord);
  if (!listed && !body.promptFeedback?.blockReason) throw new Error("not an answer: no candidates and no blocked prompt");
  const choices: ChatCompletion["choices"] = (body.candidates ?? []).map((candidate, position) => {
    const { text, reasoning, calls } = readParts(candidate.content?.parts);
    return {
      index: candidate.index ?? position,
      message: {
        role: "assistant",
        content: text || null,
        ...(reasoning ? { reasoning_content: reasoning } : {}),
        ...(calls.length ? { tool_calls: calls } : {}),
      },
      finish_reason: mapGeminiFinishReason(candidate.finishReason, calls.length > 0),
      logprobs: null,
    };
  });
  // A blocked prompt has no candidates, only the reason in promptFeedback.
  if (!choices.length && body.promptFeedback?.blockReason) {
    choices.push({ index: 0, message: { role: "assistant", content: null }, finish_reason: "content_filter", logprobs: null });
  }
  const usage = geminiUsage(body.usageMetadata);
  return {
    id: responseIdOf(body),
    object: "chat.completion",
    created: nowSeconds(),
    model: body.modelVersion ?? context.model,
    choices,
    ...(usage ? { usage } : {}),
  };
}
