import type { Usage } from "../../chat-types.ts";
import type { AnthropicUsage } from "../../providers/anthropic/api-types.ts";

/**
 * OpenAI usage in Anthropic's terms: `input_tokens` leaves out the tokens read from the prompt cache,
 * which are reported apart as `cache_read_input_tokens`.
 */
export function toAnthropicUsage(usage: Usage | null | undefined): AnthropicUsage {
  const cached = usage?.prompt_tokens_details?.cached_tokens;
  const result: AnthropicUsage = {
    input_tokens: Math.max(0, (usage?.prompt_tokens ?? 0) - (cached ?? 0)),
    output_tokens: usage?.completion_tokens ?? 0,
  };
  if (cached !== undefined) result.cache_read_input_tokens = cached;
  return result;
}
