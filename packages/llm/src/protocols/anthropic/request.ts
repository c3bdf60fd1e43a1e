import type { ChatMessage, ChatRequest, ContentPart, FunctionTool, TextPart, ToolCall, ToolChoice } from "../../chat-types.ts";
import { asNumber, asRecord, asString } from "../../common.ts";

export interface ConvertedAnthropicRequest {
  request: ChatRequest;
  /** Fields and blocks that have no OpenAI equivalent, said to the caller instead of dropped in silence. */
  warnings: string[];
}

/** The request fields this conversion reads; any other is reported. */
const HANDLED = new Set([
  "model",
  "messages",
  "system",
  "max_tokens",
  "stop_sequences",
  "temperature",
  "top_p",
  "tools",
  "tool_choice",
  "stream",
  "metadata",
]);

const asArray = (value: unknown): Record<string, unknown>[] => (Array.isArray(value) ? value.map(asRecord) : []);

const textOfBlocks = (blocks: Record<string, unknown>[]) =>
  blocks
    .filter((block) => block.type === "text")
    .map((block) => asString(block.text) ?? "")
    .join("\n");

function imagePart(block: Record<string, unknown>): ContentPart {
  const source = asRecord(block.source);
  const url =
    source.type === "base64"
      ? `data:${asString(source.media_type) ?? "image/png"};base64,${asString(source.data) ?? ""}`
      : asString(source.url);
  return { type: "image_url", image_url: { url: url ?? "" } };
}

function documentPart(block: Record<string, unknown>, warnings: string[]): ContentPart | undefined {
  const source = asRecord(block.source);
  if (source.type === "text") return { type: "text", text: asString(source.data) ?? "" };
  if (source.type === "base64") {
    const file_data = `data:${asString(source.media_type) ?? "application/pdf"};base64,${asString(source.data) ?? ""}`;
    return { type: "file", file: { filename: asString(block.title) ?? "document.pdf", file_data } };
  }
  warnings.push(`documents with a "${String(source.type)}" source are not supported; one was left out`);
  return undefined;
}

/** Parts of a user turn: a single string when it is all text, so text-only upstreams accept it. */
function userContent(parts: ContentPart[]): ChatMessage["content"] {
  if (parts.every((part): part is TextPart => part.type === "text")) return parts.map((part) => part.text).join("\n");
  return parts;
}

/** A user turn: its tool results become `tool` messages (first, as OpenAI wants them next to the call), the rest one user message. */
function convertUser(blocks: Record<string, unknown>[], warnings: string[]): ChatMessage[] {
  const toolMessages: ChatMessage[] = [];
  const parts: ContentPart[] = [];
  for (const block of blocks) {
    if (block.type === "text") parts.push({ type: "text", text: asString(block.text) ?? "" });
    else if (block.type === "image") parts.push(imagePart(block));
    else if (block.type === "document") {
      const part = documentPart(block, warnings);
      if (part) parts.push(part);
    } else if (block.type === "tool_result") {
      const content = typeof block.content === "string" ? block.content : textOfBlocks(asArray(block.content));
      toolMessages.push({ role: "tool", tool_call_id: asString(block.tool_use_id) ?? "", content });
      // OpenAI tool messages carry text only; their images follow in the user message.
      for (const image of asArray(block.content).filter((inner) => inner.type === "image")) parts.push(imagePart(image));
    } else warnings.push(`"${String(block.type)}" content blocks are not supported; one was left out`);
  }
  return parts.length ? [...toolMessages, { role: "user", content: userContent(parts) }] : toolMessages;
}

function convertAssistant(blocks: Record<string, unknown>[], warnings: string[]): ChatMessage {
  const toolCalls: ToolCall[] = [];
  for (const block of blocks) {
    if (block.type === "tool_use") {
      const args = JSON.stringify(block.input ?? {});
      toolCalls.push({ id: asString(block.id) ?? "", type: "function", function: { name: asString(block.name) ?? "", arguments: args } });
    } else if (block.type !== "text" && block.type !== "thinking" && block.type !== "redacted_thinking") {
      warnings.push(`"${String(block.type)}" content blocks are not supported; one was left out`);
    }
  }
  const text = blocks
    .filter((block) => block.type === "text")
    .map((block) => asString(block.text) ?? "")
    .join("");
  return { role: "assistant", content: text || null, ...(toolCalls.length ? { tool_calls: toolCalls } : {}) };
}

function convertMessage(message: Record<string, unknown>, warnings: string[]): ChatMessage[] {
  const role = message.role === "assistant" ? "assistant" : "user";
  if (typeof message.content === "string") return [{ role, content: message.content }];
  const blocks = asArray(message.content);
  return role === "assistant" ? [convertAssistant(blocks, warnings)] : convertUser(blocks, warnings);
}

function convertTools(tools: Record<string, unknown>[], warnings: string[]): FunctionTool[] {
  const result: FunctionTool[] = [];
  for (const tool of tools) {
    const name = asString(tool.name) ?? "";
    if (tool.input_schema === undefined) {
      warnings.push(`the server tool "${name}" (${String(tool.type)}) is not supported; it was not offered`);
      continue;
    }
    const description = asString(tool.description);
    result.push({ type: "function", function: { name, ...(description ? { description } : {}), parameters: asRecord(tool.input_schema) } });
  }
  return result;
}

function convertToolChoice(choice: Record<string, unknown>): ToolChoice {
  if (choice.type === "any") return "required";
  if (choice.type === "none") return "none";
  if (choice.type === "tool") return { type: "function", function: { name: asString(choice.name) ?? "" } };
  return "auto";
}

/** An Anthropic Messages request as an OpenAI chat request, for routing to any channel. */
export function anthropicRequestToOpenAI(raw: unknown): ConvertedAnthropicRequest {
  const body = asRecord(raw);
  const warnings = Object.keys(body)
    .filter((key) => !HANDLED.has(key))
    .map((key) => `"${key}" is not supported; it was ignored`);
  const messages: ChatMessage[] = [];
  const system = typeof body.system === "string" ? body.system : textOfBlocks(asArray(body.system));
  if (system) messages.push({ role: "system", content: system });
  for (const message of asArray(body.messages)) messages.push(...convertMessage(message, warnings));

  const request: ChatRequest = { model: asString(body.model) ?? "", messages };
  const maxTokens = asNumber(body.max_tokens);
  if (maxTokens !== undefined) request.max_tokens = maxTokens;
  const temperature = asNumber(body.temperature);
  if (temperature !== undefined) request.temperature = temperature;
  const topP = asNumber(body.top_p);
  if (topP !== undefined) request.top_p = topP;
  const stops = Array.isArray(body.stop_sequences) ? body.stop_sequences.filter((stop): stop is string => typeof stop === "string") : [];
  if (stops.length) request.stop = stops;
  const tools = convertTools(asArray(body.tools), warnings);
  if (tools.length) {
    request.tools = tools;
    const choice = asRecord(body.tool_choice);
    if (body.tool_choice !== undefined) request.tool_choice = convertToolChoice(choice);
    if (choice.disable_parallel_tool_use === true) request.parallel_tool_calls = false;
  }
  if (body.stream === true) {
    request.stream = true;
    request.stream_options = { include_usage: true };
  }
  const user = asString(asRecord(body.metadata).user_id);
  if (user) request.user = user;
  return { request, warnings };
}
