import type http from "node:http";
import { anthropicErrorBody } from "../../protocols/anthropic/errors.ts";
import { anthropicRequestToOpenAI } from "../../protocols/anthropic/request.ts";
import { anthropicEvent } from "../../protocols/anthropic/stream-encoder.ts";
import type { AnthropicContentBlock, AnthropicMessage, AnthropicStreamEvent } from "../../providers/anthropic/api-types.ts";
import { pieces, replyFor, type SimProtocol, type SimRequest } from "../simulator.ts";
import { conversationOf, openAIProtocol } from "./openai.ts";

/** Anthropic requests carry a version header; an OpenAI client asking `GET /v1/models` does not. */
const isAnthropicClient = (req: http.IncomingMessage) => req.headers["anthropic-version"] !== undefined;

/** The checks Anthropic makes before answering, as a 4xx status and message. */
function rejection(request: SimRequest): [number, string] | undefined {
  const body = (request.body ?? {}) as Record<string, unknown>;
  if (!request.req.headers["x-api-key"]) return [401, "x-api-key header is required"];
  if (request.path.endsWith("/models")) return undefined;
  if (typeof body.max_tokens !== "number") return [400, "max_tokens: Field required"];
  const messages = Array.isArray(body.messages) ? (body.messages as { role?: string }[]) : [];
  if (!messages.length) return [400, "messages: at least one message is required"];
  if (messages.some((message) => message.role !== "user" && message.role !== "assistant")) {
    return [400, "messages: roles must be user or assistant; use the top-level system parameter for a system prompt"];
  }
  return undefined;
}

/** Anthropic's Messages API (plain and streamed, with its real event sequence) and model list. */
export function anthropicProtocol(options: { models?: string[] } = {}): SimProtocol {
  const models = options.models ?? ["claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1"];
  const openAIModels = openAIProtocol();
  return {
    name: "anthropic",
    matches: (method, path) => (method === "POST" && path.endsWith("/v1/messages")) || (method === "GET" && path === "/v1/models"),
    model: (_path, body) => (body as { model?: string } | undefined)?.model,
    errorBody: anthropicErrorBody,
    errorFrame: (message) => anthropicEvent({ type: "error", error: { type: "overloaded_error", message } }),
    async handle(request) {
      // `GET /v1/models` is both APIs' path: answer OpenAI clients as OpenAI does.
      if (request.path.endsWith("/models") && !isAnthropicClient(request.req)) return openAIModels.handle(request);
      const rejected = rejection(request);
      if (rejected) return request.json(rejected[0], anthropicErrorBody(...rejected));
      if (request.path.endsWith("/models")) {
        const data = models.map((id) => ({ type: "model", id, display_name: id, created_at: "2025-01-01T00:00:00Z" }));
        return request.json(200, { data, has_more: false, first_id: models[0] ?? null, last_id: models.at(-1) ?? null });
      }
      const { request: chat } = anthropicRequestToOpenAI(request.body);
      const choice = (request.body as { tool_choice?: { type?: string; name?: string } }).tool_choice;
      const reply = replyFor({
        ...conversationOf(chat.messages),
        toolNames: (chat.tools ?? []).map((tool) => tool.function.name),
        forceTool: choice?.type === "tool" ? choice.name : undefined,
      });
      const message: AnthropicMessage = {
        id: "msg_sim",
        type: "message",
        role: "assistant",
        model: chat.model,
        content: [],
        stop_reason: reply.toolCall ? "tool_use" : "end_turn",
        stop_sequence: null,
        usage: {
          input_tokens: reply.promptTokens,
          output_tokens: reply.completionTokens,
          cache_creation_input_tokens: 0,
          cache_read_input_tokens: 0,
        },
      };
      const block: AnthropicContentBlock = reply.toolCall
        ? { type: "tool_use", id: reply.toolCall.id, name: reply.toolCall.name, input: JSON.parse(reply.toolCall.arguments) }
        : { type: "text", text: reply.text };
      if (!chat.stream) return request.json(200, { ...message, content: [block] });

      const events: AnthropicStreamEvent[] = [
        { type: "message_start", message: { ...message, stop_reason: null, usage: { ...message.usage, output_tokens: 1 } } },
        {
          type: "content_block_start",
          index: 0,
          content_block: block.type === "tool_use" ? { ...block, input: {} } : { type: "text", text: "" },
        },
        { type: "ping" },
      ];
      if (reply.toolCall) {
        for (const part of ["", ...pieces(reply.toolCall.arguments, 4)]) {
          events.push({ type: "content_block_delta", index: 0, delta: { type: "input_json_delta", partial_json: part } });
        }
      } else {
        for (const part of pieces(reply.text, 5))
          events.push({ type: "content_block_delta", index: 0, delta: { type: "text_delta", text: part } });
      }
      events.push(
        { type: "content_block_stop", index: 0 },
        {
          type: "message_delta",
          delta: { stop_reason: message.stop_reason, stop_sequence: null },
          usage: { output_tokens: reply.completionTokens },
        },
        { type: "message_stop" },
      );
      await request.stream(events.map(anthropicEvent), {
        malformed: 'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0, "delta": {"type": "text_de\n\n',
        contentType: "text/event-stream; charset=utf-8",
      });
    },
  };
}
