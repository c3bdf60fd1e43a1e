import type { Usage } from "../../chat-types.ts";
import { asNumber, asRecord } from "../../common.ts";

/**
 * Anthropic usage in OpenAI's terms. Anthropic's `input_tokens` leaves out the tokens read from and
 * written to the prompt cache; OpenAI's `prompt_tokens` counts every prompt token, with the cache
 * reads repeated as `cached_tokens`.
 */
export function convertUsage(raw: unknown): Usage | undefined {
  const usage = asRecord(raw);
  const input = asNumber(usage.input_tokens);
  const output = asNumber(usage.output_tokens);
  if (input === undefined && output === undefined) return undefined;
  const cacheRead = asNumber(usage.cache_read_input_tokens);
  const prompt = (input ?? 0) + (cacheRead ?? 0) + (asNumber(usage.cache_creation_input_tokens) ?? 0);
  const completion = output ?? 0;
  const result: Usage = { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
  if (cacheRead !== undefined) result.prompt_tokens_details = { cached_tokens: cacheRead };
  return result;
}
