import type { Usage } from "../../chat-types.ts";
import { asNumber, asRecord } from "../../common.ts";

/** Gemini's usage metadata as OpenAI usage; thinking tokens count as completion (reasoning) tokens. */
export function geminiUsage(raw: unknown): Usage | undefined {
  const meta = asRecord(raw);
  const prompt = asNumber(meta.promptTokenCount);
  const candidates = asNumber(meta.candidatesTokenCount);
  const thoughts = asNumber(meta.thoughtsTokenCount);
  const cached = asNumber(meta.cachedContentTokenCount);
  if (prompt === undefined && candidates === undefined && thoughts === undefined) return undefined;
  const completion = (candidates ?? 0) + (thoughts ?? 0);
  const usage: Usage = {
    prompt_tokens: prompt ?? 0,
    completion_tokens: completion,
    total_tokens: asNumber(meta.totalTokenCount) ?? (prompt ?? 0) + completion,
  };
  if (cached !== undefined) usage.prompt_tokens_details = { cached_tokens: cached };
  if (thoughts !== undefined) usage.completion_tokens_details = { reasoning_tokens: thoughts };
  return usage;
}
