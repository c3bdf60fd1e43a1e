import { randomBytes } from "node:crypto";
import type { ChatCompletion } from "../../chat-types.ts";
import { asRecord, isFunctionKind, parseJson } from "../../common.ts";
import type { AnthropicContentBlock, AnthropicMessage } from "../../providers/anthropic/api-types.ts";
import { mapFinishReason } from "../../providers/anthropic/map-finish-reason.ts";
import { toAnthropicUsage } from "./usage.ts";

/** A message id in Anthropic's form (`msg_…`), kept recognisable from the upstream's completion id. */
export function anthropicMessageId(upstreamId?: string): string {
  if (upstreamId?.startsWith("msg_")) return upstreamId;
  const tail = (upstreamId ?? "").replace(/^chatcmpl-/, "").replace(/[^A-Za-z0-9_-]/g, "");
  return `msg_${tail || randomBytes(12).toString("base64url")}`;
}

/** A tool use id for a tool call the upstream sent without one. */
export const toolUseId = (): string => `toolu_${randomBytes(12).toString("base64url")}`;

/** Tool arguments as the object Anthropic clients expect; arguments that are not a JSON object become `{}`. */
export function toolInput(argumentsJson: string | undefined): Record<string, unknown> {
  const parsed = parseJson(argumentsJson ?? "");
  return parsed !== null && typeof parsed === "object" && !Array.isArray(parsed) ? asRecord(parsed) : {};
}

/** An OpenAI chat completion as an Anthropic Message, named after the model the client asked for. */
export function openAICompletionToAnthropic(completion: ChatCompletion, requestedModel: string): AnthropicMessage {
  const choice = completion.choices?.[0];
  const message = choice?.message;
  const content: AnthropicContentBlock[] = [];
  if (message?.reasoning_content) content.push({ type: "thinking", thinking: message.reasoning_content, signature: "" });
  if (message?.content) content.push({ type: "text", text: message.content });
  // (Only function calls: an Anthropic client asked for no other kind.)
  for (const call of (message?.tool_calls ?? []).filter(isFunctionKind)) {
    content.push({ type: "tool_use", id: call.id || toolUseId(), name: call.function.name, input: toolInput(call.function.arguments) });
  }
  return {
    id: anthropicMessageId(completion.id),
    type: "message",
    role: "assistant",
    model: requestedModel,
    content,
    stop_reason: mapFinishReason(choice?.finish_reason),
    stop_sequence: null,
    usage: toAnthropicUsage(completion.usage),
  };
}
