import type { ChatChunk, Usage } from "../../chat-types.ts";
import type {
  AnthropicContentBlock,
  AnthropicContentDelta,
  AnthropicStopReason,
  AnthropicStreamEvent,
} from "../../providers/anthropic/api-types.ts";
import { mapFinishReason } from "../../providers/anthropic/map-finish-reason.ts";
import { anthropicMessageId, toolUseId } from "./response.ts";
import { toAnthropicUsage } from "./usage.ts";

/** Writes an OpenAI chunk stream as Anthropic's event stream; one instance per response. */
export interface AnthropicStreamEncoder {
  /** The events one chunk becomes, as server-sent event text ("" when none). */
  encode(chunk: ChatChunk): string;
  /** Closes the open block and the message, with the usage given or the last one seen; "" once finished. */
  finish(usage?: Usage | null): string;
  /** An `error` event, ending the stream. */
  error(type: string, message: string): string;
}

/** One Anthropic event as server-sent event text, named by its type. */
export const anthropicEvent = (event: AnthropicStreamEvent): string => `event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`;

type BlockKind = "text" | "thinking" | "tool";

export function createAnthropicStreamEncoder(model: string): AnthropicStreamEncoder {
  let started = false;
  let finished = false;
  let open: { index: number; kind: BlockKind } | undefined;
  let blockCount = 0;
  /** OpenAI tool call index → Anthropic content block index. */
  const toolBlocks = new Map<number, number>();
  let stopReason: AnthropicStopReason | undefined;
  let lastUsage: Usage | undefined;

  const start = (upstreamId?: string): string => {
    if (started) return "";
    started = true;
    return anthropicEvent({
      type: "message_start",
      message: {
        id: anthropicMessageId(upstreamId),
        type: "message",
        role: "assistant",
        model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { input_tokens: 0, output_tokens: 0 },
      },
    });
  };

  const close = (): string => {
    if (!open) return "";
    const event = anthropicEvent({ type: "content_block_stop", index: open.index });
    open = undefined;
    return event;
  };

  const openBlock = (kind: BlockKind, block: AnthropicContentBlock): [string, number] => {
    const closing = close();
    const index = blockCount++;
    open = { index, kind };
    return [closing + anthropicEvent({ type: "content_block_start", index, content_block: block }), index];
  };

  /** A delta for the open block of this kind, opening one first when another kind is open. */
  const delta = (kind: "text" | "thinking", value: AnthropicContentDelta): string => {
    let out = "";
    let index = open?.kind === kind ? open.index : undefined;
    if (index === undefined) {
      const block: AnthropicContentBlock = kind === "text" ? { type: "text", text: "" } : { type: "thinking", thinking: "", signature: "" };
      [out, index] = openBlock(kind, block);
    }
    return out + anthropicEvent({ type: "content_block_delta", index, delta: value });
  };

  const toolDelta = (call: NonNullable<ChatChunk["choices"][number]["delta"]["tool_calls"]>[number]): string => {
    let out = "";
    let index = toolBlocks.get(call.index);
    if (index === undefined) {
      [out, index] = openBlock("tool", { type: "tool_use", id: call.id || toolUseId(), name: call.function?.name ?? "", input: {} });
      toolBlocks.set(call.index, index);
    }
    const partial = call.function?.arguments;
    if (!partial) return out;
    return out + anthropicEvent({ type: "content_block_delta", index, delta: { type: "input_json_delta", partial_json: partial } });
  };

  return {
    encode(chunk) {
      if (finished) return "";
      let out = start(chunk.id);
      if (chunk.usage) lastUsage = chunk.usage;
      for (const choice of chunk.choices ?? []) {
        if (choice.index !== 0) continue;
        const { reasoning_content: reasoning, content, tool_calls: toolCalls } = choice.delta ?? {};
        if (reasoning) out += delta("thinking", { type: "thinking_delta", thinking: reasoning });
        if (content) out += delta("text", { type: "text_delta", text: content });
        for (const call of toolCalls ?? []) out += toolDelta(call);
        if (choice.finish_reason) {
          stopReason = mapFinishReason(choice.finish_reason);
          out += close();
        }
      }
      return out;
    },
    finish(usage) {
      if (finished) return "";
      finished = true;
      const messageDelta = anthropicEvent({
        type: "message_delta",
        delta: { stop_reason: stopReason ?? "end_turn", stop_sequence: null },
        // Input counts too: they were not known yet when message_start went out.
        usage: toAnthropicUsage(usage ?? lastUsage),
      });
      return start() + close() + messageDelta + anthropicEvent({ type: "message_stop" });
    },
    error(type, message) {
      finished = true;
      return anthropicEvent({ type: "error", error: { type, message } });
    },
  };
}
