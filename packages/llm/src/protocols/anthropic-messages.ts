/**
 * The Anthropic Messages wire protocol, inbound: what the server's `POST /v1/messages` needs to take
 * an Anthropic request to any channel and answer in Anthropic's format.
 */

export type {
  AnthropicErrorBody,
  AnthropicMessage,
  AnthropicMessagesRequest,
  AnthropicStreamEvent,
} from "../providers/anthropic/api-types.ts";
export { anthropicErrorBody } from "./anthropic/errors.ts";
export { anthropicRequestToOpenAI, type ConvertedAnthropicRequest } from "./anthropic/request.ts";
export { anthropicMessageId, openAICompletionToAnthropic } from "./anthropic/response.ts";
export { type AnthropicStreamEncoder, anthropicEvent, createAnthropicStreamEncoder } from "./anthropic/stream-encoder.ts";
export { toAnthropicUsage } from "./anthropic/usage.ts";
