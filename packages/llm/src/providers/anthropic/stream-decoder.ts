import type { ChatChunk } from "../../chat-types.ts";
import { asNumber, asRecord, asString, completionId, errorTypeForStatus, frameJson, nowSeconds } from "../../common.ts";
import type { DecodedFrames, StreamDecoder, StreamFrame } from "../../spec.ts";
import { convertUsage } from "./convert-usage.ts";
import { statusForErrorType } from "./errors.ts";
import { mapStopReason } from "./map-finish-reason.ts";

type Delta = ChatChunk["choices"][number]["delta"];

const USAGE_FIELDS = ["input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"] as const;

/**
 * Turns Anthropic's stream events into OpenAI chunks. Usage arrives in two halves (input counts in
 * `message_start`, output in `message_delta`) and is reported once, in a last chunk without choices.
 */
export function createStreamDecoder(model: string): StreamDecoder {
  let id = completionId();
  let upstreamModel = model;
  const created = nowSeconds();
  const usage: Record<string, number> = {};
  /** Anthropic content block index → OpenAI tool call index. */
  const toolIndexes = new Map<number, number>();
  let usageReported = false;

  const chunk = (delta: Delta, finishReason: ChatChunk["choices"][number]["finish_reason"] = null): ChatChunk => ({
    id,
    object: "chat.completion.chunk",
    created,
    model: upstreamModel,
    choices: [{ index: 0, delta, finish_reason: finishReason }],
  });

  const recordUsage = (raw: unknown) => {
    const record = asRecord(raw);
    for (const field of USAGE_FIELDS) {
      const value = asNumber(record[field]);
      if (value !== undefined) usage[field] = value;
    }
  };

  const usageChunks = (): ChatChunk[] => {
    const converted = convertUsage(usage);
    if (usageReported || !converted) return [];
    usageReported = true;
    return [{ id, object: "chat.completion.chunk", created, model: upstreamModel, choices: [], usage: converted }];
  };

  const blockStart = (index: number, block: Record<string, unknown>): ChatChunk[] => {
    if (block.type === "text" && asString(block.text)) return [chunk({ content: String(block.text) })];
    if (block.type === "thinking" && asString(block.thinking)) return [chunk({ reasoning_content: String(block.thinking) })];
    if (block.type !== "tool_use") return [];
    const toolIndex = toolIndexes.size;
    toolIndexes.set(index, toolIndex);
    const call = { index: toolIndex, id: asString(block.id) ?? "", type: "function" as const };
    return [chunk({ tool_calls: [{ ...call, function: { name: asString(block.name) ?? "", arguments: "" } }] })];
  };

  const blockDelta = (index: number, delta: Record<string, unknown>): ChatChunk[] => {
    if (delta.type === "text_delta" && asString(delta.text)) return [chunk({ content: String(delta.text) })];
    if (delta.type === "thinking_delta" && asString(delta.thinking)) return [chunk({ reasoning_content: String(delta.thinking) })];
    const toolIndex = toolIndexes.get(index);
    if (delta.type === "input_json_delta" && toolIndex !== undefined && asString(delta.partial_json)) {
      return [chunk({ tool_calls: [{ index: toolIndex, function: { arguments: String(delta.partial_json) } }] })];
    }
    return [];
  };

  return {
    decode(frame: StreamFrame): DecodedFrames {
      const json = frameJson(frame);
      if (!json.ok) return json.result;
      const parsed = json.value;
      const event = asRecord(parsed);
      switch (asString(event.type) ?? frame.event) {
        case "message_start": {
          const message = asRecord(event.message);
          id = asString(message.id) ?? id;
          upstreamModel = asString(message.model) ?? upstreamModel;
          recordUsage(message.usage);
          return { chunks: [chunk({ role: "assistant", content: "" })] };
        }
        case "content_block_start":
          return { chunks: blockStart(asNumber(event.index) ?? 0, asRecord(event.content_block)) };
        case "content_block_delta":
          return { chunks: blockDelta(asNumber(event.index) ?? 0, asRecord(event.delta)) };
        case "message_delta": {
          recordUsage(event.usage);
          const finishReason = mapStopReason(asRecord(event.delta).stop_reason);
          return { chunks: finishReason ? [chunk({}, finishReason)] : [] };
        }
        case "message_stop":
          return { chunks: usageChunks(), done: true };
        case "error": {
          const error = asRecord(event.error);
          const code = asString(error.type) ?? "api_error";
          const status = statusForErrorType(code);
          const message = asString(error.message) ?? "upstream reported an error";
          return { chunks: [], error: { status, message, type: errorTypeForStatus(status), code } };
        }
        default:
          // ping, content_block_stop, and event types added after this was written.
          return { chunks: [] };
      }
    },
    flush: usageChunks,
  };
}
