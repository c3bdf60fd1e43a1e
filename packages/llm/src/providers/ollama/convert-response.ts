import type { ChatCompletion, EmbeddingsResponse, ToolCall, Usage } from "../../chat-types.ts";
import { asNumber, asRecord, completionId, isRecord, nowSeconds, toolCallId } from "../../common.ts";
import type { CallContext } from "../../spec.ts";
import type { OllamaChatResponse, OllamaToolCall } from "./api-types.ts";
import { mapOllamaFinishReason } from "./finish-reason.ts";

/** Ollama's tool calls with string arguments and ids (Ollama gives ids only in newer versions). */
export function toolCallsOf(calls: OllamaToolCall[] | undefined): ToolCall[] {
  return (calls ?? []).map((call) => ({
    id: call.id || toolCallId(),
    type: "function",
    function: { name: call.function.name, arguments: JSON.stringify(call.function.arguments ?? {}) },
  }));
}

/** The token counts on the last line; Ollama leaves `prompt_eval_count` out when the prompt was cached whole. */
export function ollamaUsage(body: OllamaChatResponse): Usage {
  const prompt = asNumber(body.prompt_eval_count) ?? 0;
  const completion = asNumber(body.eval_count) ?? 0;
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}

export function createdOf(body: OllamaChatResponse): number {
  const time = body.created_at ? Date.parse(body.created_at) : Number.NaN;
  return Number.isFinite(time) ? Math.floor(time / 1000) : nowSeconds();
}

/**
 * A non-streamed `/api/chat` answer as an OpenAI chat completion. A body without its `message` is no
 * answer: refused with an error, as a malformed answer the caller may try elsewhere.
 */
export function ollamaResponse(raw: unknown, context: CallContext): ChatCompletion {
  const body = asRecord(raw) as OllamaChatResponse;
  if (!isRecord(body.message)) throw new Error("not a chat answer: it has no message");
  const message = body.message;
  const toolCalls = toolCallsOf(message.tool_calls);
  return {
    id: completionId(),
    object: "chat.completion",
    created: createdOf(body),
    model: body.model ?? context.model,
    choices: [
      {
        index: 0,
        message: {
          role: "assistant",
          content: message.content || (toolCalls.length ? null : ""),
          ...(message.thinking ? { reasoning_content: message.thinking } : {}),
          ...(toolCalls.length ? { tool_calls: toolCalls } : {}),
        },
        finish_reason: mapOllamaFinishReason(body.done_reason, toolCalls.length > 0),
        logprobs: null,
      },
    ],
    usage: ollamaUsage(body),
  };
}

/** `/api/embed`'s `{embeddings: [[…]], prompt_eval_count}` as OpenAI's list; refused without its vectors. */
export function ollamaEmbeddingsResponse(raw: unknown, context: CallContext): EmbeddingsResponse {
  const body = asRecord(raw);
  if (!Array.isArray(body.embeddings) || !body.embeddings.every(Array.isArray)) {
    throw new Error("not an embeddings answer: no list of vectors");
  }
  const embeddings = body.embeddings as number[][];
  const tokens = asNumber(body.prompt_eval_count) ?? 0;
  return {
    object: "list",
    data: embeddings.map((embedding, index) => ({ object: "embedding", index, embedding })),
    model: typeof body.model === "string" ? body.model : context.model,
    usage: { prompt_tokens: tokens, total_tokens: tokens },
  };
}

/** `/api/tags`'s `{models: [{name}]}` as names. */
export function ollamaModelNames(raw: unknown): string[] {
  const models = asRecord(raw).models;
  return (Array.isArray(models) ? models : [])
    .map((model) => asRecord(model).name)
    .filter((name): name is string => typeof name === "string");
}
