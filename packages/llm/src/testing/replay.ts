import { readFileSync } from "node:fs";
import type { ChatChunk, ChatRequest, FinishReason, ToolCall, Usage } from "../chat-types.ts";
import type { CallContext, DecodedFrames, ProviderSpec } from "../spec.ts";
import { readFrames } from "../stream-reader.ts";

export interface DecodedStream {
  chunks: ChatChunk[];
  error?: DecodedFrames["error"];
  /** The decoder saw the upstream's end-of-stream signal. */
  done: boolean;
}

/** Bytes in small slices, so frames arrive split across reads the way a network splits them. */
async function* slices(bytes: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let offset = 0; offset < bytes.length; offset += size) yield bytes.subarray(offset, offset + size);
}

/** Runs an upstream body (a live response, or a recorded one) through an adapter's stream decoder. */
export async function decodeStream(
  spec: ProviderSpec,
  body: AsyncIterable<Uint8Array | string>,
  context: CallContext,
  request: ChatRequest,
): Promise<DecodedStream> {
  const decoder = spec.chat.stream(context, request);
  const result: DecodedStream = { chunks: [], done: false };
  for await (const frame of readFrames(body, spec.streamFormat)) {
    const decoded = decoder.decode(frame);
    result.chunks.push(...decoded.chunks);
    if (decoded.done) result.done = true;
    if (decoded.error) {
      result.error = decoded.error;
      return result;
    }
  }
  result.chunks.push(...decoder.flush());
  return result;
}

/** Replays a recorded stream fixture through an adapter, a few bytes at a time. */
export function replayFixture(spec: ProviderSpec, file: URL, context: CallContext, request: ChatRequest, sliceSize = 7) {
  return decodeStream(spec, slices(readFileSync(file), sliceSize), context, request);
}

export const readFixture = (file: URL): string => readFileSync(file, "utf8");

export interface Reassembled {
  content: string;
  reasoning: string;
  toolCalls: ToolCall[];
  finishReason: FinishReason | null;
  usage?: Usage;
  /** Chunks carrying the assistant role (OpenAI sends it once, on the first). */
  roleChunks: number;
}

/** What a client rebuilds from the chunks of one choice: text, reasoning, tool calls, finish and usage. */
export function reassemble(chunks: ChatChunk[], choiceIndex = 0): Reassembled {
  const out: Reassembled = { content: "", reasoning: "", toolCalls: [], finishReason: null, roleChunks: 0 };
  for (const chunk of chunks) {
    if (chunk.usage) out.usage = chunk.usage;
    for (const choice of chunk.choices) {
      if (choice.index !== choiceIndex) continue;
      const { delta } = choice;
      if (delta.role) out.roleChunks += 1;
      out.content += delta.content ?? "";
      out.reasoning += delta.reasoning_content ?? "";
      for (const call of delta.tool_calls ?? []) {
        const existing = out.toolCalls[call.index];
        if (!existing) {
          out.toolCalls[call.index] = {
            id: call.id ?? "",
            type: "function",
            function: { name: call.function?.name ?? "", arguments: call.function?.arguments ?? "" },
          };
        } else {
          existing.function.arguments += call.function?.arguments ?? "";
        }
      }
      if (choice.finish_reason) out.finishReason = choice.finish_reason;
    }
  }
  return out;
}
