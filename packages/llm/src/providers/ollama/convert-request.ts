import type { ChatRequest, EmbeddingsRequest } from "../../chat-types.ts";
import { functionToolsOnly, joinUrl } from "../../common.ts";
import type { CallContext, TranslatedRequest, UpstreamRequest } from "../../spec.ts";
import type { OllamaChatRequest, OllamaOptions } from "./api-types.ts";
import { convertMessages } from "./convert-messages.ts";

const isSet = <T>(value: T | null | undefined): value is T => value !== undefined && value !== null;

/** Bearer auth only when a key is set: plain Ollama needs none, a proxy in front of it may. */
export function ollamaHeaders(context: CallContext): Record<string, string> {
  const headers: Record<string, string> = { "content-type": "application/json", ...context.extraHeaders };
  const key = context.credentials.api_key;
  if (key !== undefined && key !== "") headers.authorization = `Bearer ${key}`;
  return headers;
}

function options(body: ChatRequest): OllamaOptions | undefined {
  const out: OllamaOptions = {};
  if (isSet(body.temperature)) out.temperature = body.temperature;
  if (isSet(body.top_p)) out.top_p = body.top_p;
  const maxTokens = body.max_completion_tokens ?? body.max_tokens;
  if (isSet(maxTokens)) out.num_predict = maxTokens;
  if (isSet(body.stop)) out.stop = Array.isArray(body.stop) ? body.stop : [body.stop];
  if (isSet(body.seed)) out.seed = body.seed;
  if (isSet(body.presence_penalty)) out.presence_penalty = body.presence_penalty;
  if (isSet(body.frequency_penalty)) out.frequency_penalty = body.frequency_penalty;
  return Object.keys(out).length ? out : undefined;
}

function format(body: ChatRequest): OllamaChatRequest["format"] {
  const responseFormat = body.response_format;
  if (responseFormat?.type === "json_object") return "json";
  if (responseFormat?.type !== "json_schema") return undefined;
  const schema = responseFormat.json_schema?.schema;
  return schema && typeof schema === "object" ? (schema as Record<string, unknown>) : "json";
}

function warningsFor(body: ChatRequest): string[] {
  const warnings: string[] = [];
  if (isSet(body.n) && body.n > 1) warnings.push(`Ollama returns one choice; "n": ${body.n} was not sent`);
  if (isSet(body.logit_bias)) warnings.push('Ollama does not support "logit_bias"; it was not sent');
  const choice = body.tool_choice;
  if (body.tools?.length && (choice === "required" || typeof choice === "object")) {
    warnings.push(`Ollama does not support tool_choice ${JSON.stringify(choice)}; the model chooses for itself`);
  }
  return warnings;
}

/** OpenAI's chat request as Ollama's `/api/chat`; `stream` is always sent, since Ollama streams by default. */
export function ollamaChatRequest(asked: ChatRequest, context: CallContext): TranslatedRequest {
  const warnings = warningsFor(asked);
  const body = functionToolsOnly(asked, "Ollama", warnings);
  const messages = convertMessages(body.messages, warnings);
  const outgoing: OllamaChatRequest = { model: context.model, messages, stream: body.stream === true };
  const sampling = options(body);
  if (sampling) outgoing.options = sampling;
  const responseFormat = format(body);
  if (responseFormat) outgoing.format = responseFormat;
  if (body.tools?.length && body.tool_choice !== "none") outgoing.tools = body.tools;
  if (typeof body.reasoning_effort === "string") outgoing.think = body.reasoning_effort !== "none";
  const request: UpstreamRequest = {
    method: "POST",
    url: joinUrl(context.baseUrl, "/api/chat"),
    headers: ollamaHeaders(context),
    body: JSON.stringify(outgoing),
  };
  return { request, warnings };
}

/** The texts to embed; token arrays (which Ollama cannot take) are sent as their JSON text, with a warning. */
function embeddingTexts(input: EmbeddingsRequest["input"], warnings: string[]): string[] {
  if (typeof input === "string") return [input];
  const items = input.every((item) => typeof item === "number") ? [input] : input;
  if (items.some((item) => typeof item !== "string")) warnings.push("Ollama embeds only text; token arrays were sent as text");
  return items.map((item) => (typeof item === "string" ? item : JSON.stringify(item)));
}

export function ollamaEmbeddingsRequest(body: EmbeddingsRequest, context: CallContext): TranslatedRequest {
  const warnings: string[] = [];
  const input = embeddingTexts(body.input, warnings);
  if (body.encoding_format === "base64") warnings.push('Ollama does not support encoding_format "base64"; floats are returned');
  const outgoing = { model: context.model, input, ...(body.dimensions ? { dimensions: body.dimensions } : {}) };
  return {
    request: {
      method: "POST",
      url: joinUrl(context.baseUrl, "/api/embed"),
      headers: ollamaHeaders(context),
      body: JSON.stringify(outgoing),
    },
    warnings,
  };
}

export const ollamaModelsRequest = (context: CallContext): UpstreamRequest => ({
  method: "GET",
  url: joinUrl(context.baseUrl, "/api/tags"),
  headers: ollamaHeaders(context),
});
