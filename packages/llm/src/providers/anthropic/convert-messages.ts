import type { ChatMessage, ImagePart, TextPart, ToolCall } from "../../chat-types.ts";
import { textOf } from "../../chat-types.ts";
import { asRecord, parseJson } from "../../common.ts";
import type {
  AnthropicContentBlock,
  AnthropicImageBlock,
  AnthropicImageSource,
  AnthropicMessageParam,
  AnthropicTextBlock,
  AnthropicToolUseBlock,
} from "./api-types.ts";

export interface ConvertedMessages {
  system?: string;
  messages: AnthropicMessageParam[];
}

/** An image URL as an Anthropic image source: a data URL is sent inline, any other URL is fetched by Anthropic. */
export function imageSource(url: string): AnthropicImageSource {
  const match = /^data:([^;,]+)(?:;[^;,]*)*;base64,(.*)$/s.exec(url);
  if (match?.[1] && match[2] !== undefined) return { type: "base64", media_type: match[1], data: match[2] };
  return { type: "url", url };
}

/** Text and image parts as Anthropic blocks; empty text is left out (Anthropic rejects it). */
function contentBlocks(content: ChatMessage["content"], warnings: string[]): (AnthropicTextBlock | AnthropicImageBlock)[] {
  if (!content) return [];
  if (typeof content === "string") return [{ type: "text", text: content }];
  const blocks: (AnthropicTextBlock | AnthropicImageBlock)[] = [];
  for (const part of content) {
    if (part.type === "text") {
      const text = String((part as TextPart).text ?? "");
      if (text) blocks.push({ type: "text", text });
    } else if (part.type === "image_url") {
      blocks.push({ type: "image", source: imageSource((part as ImagePart).image_url.url) });
    } else {
      warnings.push(`Anthropic does not support "${part.type}" content parts; one was not sent`);
    }
  }
  return blocks;
}

/** Anthropic accepts tool ids of letters, digits, `_` and `-` only; others (`functions.get:0`) are rewritten the same way everywhere. */
const toolId = (id: string | undefined) => (id ?? "").replace(/[^A-Za-z0-9_-]/g, "_");

function toolUse(call: ToolCall, warnings: string[]): AnthropicToolUseBlock {
  const args = call.function.arguments?.trim() ?? "";
  const parsed = args ? parseJson(args) : {};
  const isObject = parsed !== null && typeof parsed === "object" && !Array.isArray(parsed);
  if (!isObject) warnings.push(`the arguments of tool call "${call.id}" are not a JSON object; they were sent as {}`);
  return { type: "tool_use", id: toolId(call.id), name: call.function.name, input: isObject ? asRecord(parsed) : {} };
}

/** Appends blocks to the conversation, merging them into the previous message when the role repeats. */
function append(messages: AnthropicMessageParam[], role: AnthropicMessageParam["role"], blocks: AnthropicContentBlock[]): void {
  if (!blocks.length) return;
  const last = messages.at(-1);
  if (last?.role === role && Array.isArray(last.content)) last.content.push(...blocks);
  else messages.push({ role, content: blocks });
}

/**
 * OpenAI messages as Anthropic's: system and developer messages become the `system` prompt, tool
 * calls become `tool_use` blocks, and tool answers become `tool_result` blocks of a user message
 * (consecutive ones merged, as Anthropic requires alternating roles).
 */
export function convertMessages(input: ChatMessage[], warnings: string[]): ConvertedMessages {
  const system: string[] = [];
  const messages: AnthropicMessageParam[] = [];
  for (const message of input) {
    switch (message.role) {
      case "system":
      case "developer": {
        const text = textOf(message.content);
        if (text) system.push(text);
        break;
      }
      case "user":
        append(messages, "user", contentBlocks(message.content, warnings));
        break;
      case "assistant":
        append(messages, "assistant", [
          ...contentBlocks(message.content, warnings),
          ...(message.tool_calls ?? []).map((call) => toolUse(call, warnings)),
        ]);
        break;
      case "tool": {
        const content = typeof message.content === "string" ? message.content : contentBlocks(message.content, warnings);
        append(messages, "user", [{ type: "tool_result", tool_use_id: toolId(message.tool_call_id), content }]);
        break;
      }
    }
  }
  return { ...(system.length ? { system: system.join("\n\n") } : {}), messages };
}
