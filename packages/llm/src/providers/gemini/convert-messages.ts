import type { ChatMessage } from "../../chat-types.ts";
import { textOf } from "../../chat-types.ts";
import { parseJson } from "../../common.ts";
import type { GeminiContent, GeminiPart } from "./api-types.ts";
import { contentPart } from "./convert-content.ts";

export interface ConvertedMessages {
  systemInstruction?: GeminiContent;
  contents: GeminiContent[];
  warnings: string[];
}

const isObject = (value: unknown): value is Record<string, unknown> => !!value && typeof value === "object" && !Array.isArray(value);

function userParts(message: ChatMessage, warnings: string[]): GeminiPart[] {
  if (typeof message.content === "string") return [{ text: message.content }];
  const parts: GeminiPart[] = [];
  for (const part of message.content ?? []) {
    const converted = contentPart(part);
    if (converted) parts.push(converted);
    else warnings.push(`Gemini does not support "${part.type}" content parts; one was not sent`);
  }
  return parts;
}

function assistantParts(message: ChatMessage, warnings: string[]): GeminiPart[] {
  const text = textOf(message.content);
  const parts: GeminiPart[] = text ? [{ text }] : [];
  for (const call of message.tool_calls ?? []) {
    const args = parseJson(call.function.arguments || "{}");
    if (!isObject(args)) warnings.push(`tool call ${call.id} has arguments that are not a JSON object; {} was sent`);
    parts.push({ functionCall: { name: call.function.name, args: isObject(args) ? args : {} } });
  }
  return parts;
}

/** A tool result as a function response: its JSON object, or the text wrapped as `{content}`. */
function toolPart(message: ChatMessage, names: Map<string, string>, warnings: string[]): GeminiPart {
  const name = names.get(message.tool_call_id ?? "") ?? message.name;
  if (!name) warnings.push(`tool message ${message.tool_call_id ?? "(no id)"} answers no earlier tool call; sent as "unknown"`);
  const text = textOf(message.content);
  const parsed = parseJson(text);
  return { functionResponse: { name: name ?? "unknown", response: isObject(parsed) ? parsed : { content: text } } };
}

/**
 * OpenAI messages as Gemini contents: system and developer messages become the system
 * instruction; consecutive turns of one role are merged, so parallel tool results share a turn.
 */
export function convertMessages(messages: ChatMessage[]): ConvertedMessages {
  const warnings: string[] = [];
  const system: GeminiPart[] = [];
  const contents: GeminiContent[] = [];
  const toolNames = new Map<string, string>();
  const append = (role: "user" | "model", parts: GeminiPart[]) => {
    if (!parts.length) return;
    const last = contents.at(-1);
    if (last?.role === role) last.parts.push(...parts);
    else contents.push({ role, parts });
  };

  for (const message of messages) {
    if (message.role === "system" || message.role === "developer") {
      const text = textOf(message.content);
      if (text) system.push({ text });
    } else if (message.role === "assistant") {
      for (const call of message.tool_calls ?? []) toolNames.set(call.id, call.function.name);
      append("model", assistantParts(message, warnings));
    } else if (message.role === "tool") {
      append("user", [toolPart(message, toolNames, warnings)]);
    } else {
      append("user", userParts(message, warnings));
    }
  }
  return { ...(system.length ? { systemInstruction: { parts: system } } : {}), contents, warnings };
}
