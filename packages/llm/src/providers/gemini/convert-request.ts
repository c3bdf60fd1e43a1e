import type { ChatRequest } from "../../chat-types.ts";
import { functionToolsOnly, joinUrl, unsupportedWarnings } from "../../common.ts";
import type { CallContext, TranslatedRequest } from "../../spec.ts";
import type { GeminiGenerationConfig, GeminiRequest } from "./api-types.ts";
import { cleanSchema } from "./clean-schema.ts";
import { convertMessages } from "./convert-messages.ts";
import { convertTools } from "./convert-tools.ts";

const UNSUPPORTED = ["logit_bias", "logprobs", "top_logprobs"] as const;

/** OpenAI's reasoning_effort as a thinking budget, the way Google's own OpenAI layer maps it. */
const THINKING_BUDGET: Record<string, number> = { none: 0, minimal: 1024, low: 1024, medium: 8192, high: 24576 };

/** `models/gemini-2.0-flash` for a bare name; `tunedModels/…` and the like as given. */
export const modelPath = (model: string) => (model.includes("/") ? model : `models/${model}`);

/** The API's address for a model and method (`generateContent`, `batchEmbedContents`, …). */
export const geminiUrl = (context: CallContext, method: string) =>
  joinUrl(context.baseUrl, `/v1beta/${modelPath(context.model)}:${method}`);

export function geminiHeaders(context: CallContext): Record<string, string> {
  const headers: Record<string, string> = { "content-type": "application/json", ...context.extraHeaders };
  const key = context.credentials.api_key;
  if (key !== undefined && key !== "") headers["x-goog-api-key"] = String(key);
  return headers;
}

const isSet = <T>(value: T | null | undefined): value is T => value !== undefined && value !== null;

function generationConfig(body: ChatRequest, warnings: string[]): GeminiGenerationConfig | undefined {
  const config: GeminiGenerationConfig = {};
  if (isSet(body.temperature)) config.temperature = body.temperature;
  if (isSet(body.top_p)) config.topP = body.top_p;
  const maxTokens = body.max_completion_tokens ?? body.max_tokens;
  if (isSet(maxTokens)) config.maxOutputTokens = maxTokens;
  if (isSet(body.stop)) config.stopSequences = Array.isArray(body.stop) ? body.stop : [body.stop];
  if (isSet(body.n)) config.candidateCount = body.n;
  if (isSet(body.seed)) config.seed = body.seed;
  if (isSet(body.presence_penalty)) config.presencePenalty = body.presence_penalty;
  if (isSet(body.frequency_penalty)) config.frequencyPenalty = body.frequency_penalty;
  const format = body.response_format;
  if (format?.type === "json_object" || format?.type === "json_schema") config.responseMimeType = "application/json";
  const schema = format?.type === "json_schema" ? cleanSchema(format.json_schema?.schema) : undefined;
  if (schema) config.responseSchema = schema;
  const effort = body.reasoning_effort;
  if (typeof effort === "string") {
    const budget = THINKING_BUDGET[effort];
    if (budget === undefined) warnings.push(`Gemini does not know reasoning_effort "${effort}"; it was not sent`);
    else config.thinkingConfig = budget ? { thinkingBudget: budget, includeThoughts: true } : { thinkingBudget: 0 };
  }
  return Object.keys(config).length ? config : undefined;
}

/** OpenAI's chat request as a Gemini `generateContent` (or streamed, `alt=sse`) call. */
export function geminiChatRequest(request: ChatRequest, context: CallContext): TranslatedRequest {
  const warnings = unsupportedWarnings(request, UNSUPPORTED, "Gemini");
  const body = functionToolsOnly(request, "Gemini", warnings);
  const messages = convertMessages(body.messages);
  warnings.push(...messages.warnings);
  const config = generationConfig(body, warnings);
  const outgoing: GeminiRequest = {
    contents: messages.contents,
    ...(messages.systemInstruction ? { systemInstruction: messages.systemInstruction } : {}),
    ...convertTools(body, warnings),
    ...(config ? { generationConfig: config } : {}),
  };
  const url = body.stream ? `${geminiUrl(context, "streamGenerateContent")}?alt=sse` : geminiUrl(context, "generateContent");
  return { request: { method: "POST", url, headers: geminiHeaders(context), body: JSON.stringify(outgoing) }, warnings };
}
