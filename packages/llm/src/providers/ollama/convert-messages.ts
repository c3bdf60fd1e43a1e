import type { ChatMessage, ImagePart } from "../../chat-types.ts";
import { textOf } from "../../chat-types.ts";
import { parseJson } from "../../common.ts";
import type { OllamaMessage } from "./api-types.ts";

const DATA_URL = /^data:[^,]*?(;base64)?,(.*)$/s;

const isObject = (value: unknown): value is Record<string, unknown> => !!value && typeof value === "object" && !Array.isArray(value);

/** A `data:` URL's payload in base64; Ollama cannot fetch remote images. */
function imageData(url: string): string | undefined {
  const match = DATA_URL.exec(url);
  if (!match) return undefined;
  const [, base64, payload = ""] = match;
  return base64 ? payload : Buffer.from(decodeURIComponent(payload), "utf8").toString("base64");
}

function userMessage(message: ChatMessage, warnings: string[]): OllamaMessage {
  const images: string[] = [];
  for (const part of Array.isArray(message.content) ? message.content : []) {
    if (part.type === "text") continue;
    if (part.type !== "image_url") {
      warnings.push(`Ollama does not support "${part.type}" content parts; one was not sent`);
      continue;
    }
    const data = imageData((part as ImagePart).image_url.url);
    if (data) images.push(data);
    else warnings.push("Ollama takes only inline (data:) images; an image URL was not sent");
  }
  return { role: "user", content: textOf(message.content), ...(images.length ? { images } : {}) };
}

function assistantMessage(message: ChatMessage, warnings: string[]): OllamaMessage {
  const toolCalls = (message.tool_calls ?? []).map((call) => {
    const args = parseJson(call.function.arguments || "{}");
    if (!isObject(args)) warnings.push(`tool call ${call.id} has arguments that are not a JSON object; {} was sent`);
    return { function: { name: call.function.name, arguments: isObject(args) ? args : {} } };
  });
  return { role: "assistant", content: textOf(message.content), ...(toolCalls.length ? { tool_calls: toolCalls } : {}) };
}

/** OpenAI messages as Ollama's: plain-text content, images beside it, tool arguments as objects. */
export function convertMessages(messages: ChatMessage[], warnings: string[]): OllamaMessage[] {
  const toolNames = new Map<string, string>();
  return messages.map((message): OllamaMessage => {
    if (message.role === "system" || message.role === "developer") return { role: "system", content: textOf(message.content) };
    if (message.role === "assistant") {
      for (const call of message.tool_calls ?? []) toolNames.set(call.id, call.function.name);
      return assistantMessage(message, warnings);
    }
    if (message.role === "tool") {
      const name = toolNames.get(message.tool_call_id ?? "") ?? message.name;
      return { role: "tool", content: textOf(message.content), ...(name ? { tool_name: name } : {}) };
    }
    return userMessage(message, warnings);
  });
}
