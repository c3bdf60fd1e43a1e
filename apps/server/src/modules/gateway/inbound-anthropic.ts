import { anthropicErrorBody, createAnthropicStreamEncoder, openAICompletionToAnthropic } from "@lyss/llm";
import type { InboundProtocol } from "./inbound.ts";

/** The Anthropic Messages protocol, for clients such as @anthropic-ai/sdk and Claude Code. */
export const anthropicInbound: InboundProtocol = {
  name: "anthropic",
  errorBody: (status, message) => anthropicErrorBody(status, message),
  completion: (completion, model) => openAICompletionToAnthropic(completion, model),
  streamEncoder(model) {
    const encoder = createAnthropicStreamEncoder(model);
    return {
      chunk: (chunk) => encoder.encode(chunk),
      end: (usage) => encoder.finish(usage),
      error: (status, message) => encoder.error(anthropicErrorBody(status, message).error.type, message),
    };
  },
};
