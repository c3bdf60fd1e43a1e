import type { ChatChunk, Usage } from "../../chat-types.ts";
import { asRecord, frameJson, nowSeconds } from "../../common.ts";
import type { CallContext, DecodedFrames, StreamDecoder, StreamFrame } from "../../spec.ts";
import type { GeminiCandidate, GeminiResponse } from "./api-types.ts";
import { readParts, responseIdOf } from "./convert-response.ts";
import { geminiUsage } from "./convert-usage.ts";
import { readGeminiError } from "./error.ts";
import { mapGeminiFinishReason } from "./finish-reason.ts";

type Choice = ChatChunk["choices"][number];
type Delta = Choice["delta"];

/**
 * Gemini streams whole `GenerateContentResponse`s with incremental parts. Text becomes content
 * deltas, a function call (which arrives whole) one tool-call delta, and the last usage metadata
 * a final usage chunk when the stream ends.
 */
export function geminiStreamDecoder(context: CallContext): StreamDecoder {
  const created = nowSeconds();
  let id: string | undefined;
  let model = context.model;
  let usage: Usage | undefined;
  const started = new Set<number>();
  const finished = new Set<number>();
  const toolCounts = new Map<number, number>();

  const chunk = (choices: Choice[], chunkUsage: Usage | null = null): ChatChunk => ({
    id: id ?? "",
    object: "chat.completion.chunk",
    created,
    model,
    choices,
    usage: chunkUsage,
  });

  /** The delta with the assistant role on a choice's first chunk. */
  const opening = (index: number, delta: Delta): Delta => {
    if (started.has(index)) return delta;
    started.add(index);
    return { role: "assistant", ...delta };
  };

  function candidateChunks(candidate: GeminiCandidate, index: number): ChatChunk[] {
    const { text, reasoning, calls } = readParts(candidate.content?.parts);
    const deltas: Delta[] = [];
    if (reasoning) deltas.push({ reasoning_content: reasoning });
    if (text) deltas.push({ content: text });
    if (calls.length) {
      const first = toolCounts.get(index) ?? 0;
      toolCounts.set(index, first + calls.length);
      deltas.push({ tool_calls: calls.map((call, offset) => ({ index: first + offset, ...call })) });
    }
    const chunks = deltas.map((delta) => chunk([{ index, delta: opening(index, delta), finish_reason: null }]));
    const reason = mapGeminiFinishReason(candidate.finishReason, (toolCounts.get(index) ?? 0) > 0);
    if (reason) {
      finished.add(index);
      chunks.push(chunk([{ index, delta: opening(index, {}), finish_reason: reason }]));
    }
    return chunks;
  }

  return {
    decode(frame: StreamFrame): DecodedFrames {
      const json = frameJson(frame);
      if (!json.ok) return json.result;
      const parsed = json.value;
      const error = readGeminiError(500, parsed);
      if (error) return { chunks: [], error };
      const body = asRecord(parsed) as GeminiResponse;
      id ??= responseIdOf(body);
      if (body.modelVersion) model = body.modelVersion;
      usage = geminiUsage(body.usageMetadata) ?? usage;
      const candidates = body.candidates ?? [];
      const chunks = candidates.flatMap((candidate, position) => candidateChunks(candidate, candidate.index ?? position));
      if (!candidates.length && body.promptFeedback?.blockReason) {
        finished.add(0);
        chunks.push(chunk([{ index: 0, delta: opening(0, {}), finish_reason: "content_filter" }]));
      }
      const done = finished.size > 0 && [...started].every((index) => finished.has(index));
      return done ? { chunks, done } : { chunks };
    },
    flush(): ChatChunk[] {
      if (!usage) return [];
      const final = chunk([], usage);
      usage = undefined;
      return [final];
    },
  };
}
