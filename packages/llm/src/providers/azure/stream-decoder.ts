import type { ChatChunk } from "../../chat-types.ts";
import type { DecodedFrames, StreamDecoder, StreamFrame } from "../../spec.ts";
import { compatibleStreamDecoder } from "../openai-compatible/create.ts";
import { stripAzureExtras } from "./convert-response.ts";

type Choice = ChatChunk["choices"][number];

const hasDelta = (choice: Choice) => Object.values(choice.delta ?? {}).some((value) => value !== undefined);

/**
 * OpenAI's stream decoding, minus Azure's filter-only chunks: the `prompt_filter_results` chunk
 * with empty `choices` that comes first, and annotation chunks with an empty delta.
 */
function withoutFilterNoise(chunk: ChatChunk): ChatChunk | undefined {
  const cleaned = stripAzureExtras(chunk);
  const choices = cleaned.choices.filter((choice) => hasDelta(choice) || choice.finish_reason !== null);
  if (!choices.length && !cleaned.usage) return undefined;
  return { ...cleaned, choices };
}

export function azureStreamDecoder(): StreamDecoder {
  const compatible = compatibleStreamDecoder();
  return {
    decode(frame: StreamFrame): DecodedFrames {
      const decoded = compatible.decode(frame);
      const chunks = decoded.chunks.map(withoutFilterNoise).filter((chunk): chunk is ChatChunk => chunk !== undefined);
      return { ...decoded, chunks };
    },
    flush: () => [],
  };
}
