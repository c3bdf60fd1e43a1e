import type { EmbeddingsRequest, EmbeddingsResponse } from "../../chat-types.ts";
import { asNumber, asRecord } from "../../common.ts";
import type { CallContext, TranslatedRequest } from "../../spec.ts";
import { geminiHeaders, geminiUrl, modelPath } from "./convert-request.ts";

/** Gemini reports no usage for embeddings: the estimate made from the input, per call. */
const estimates = new WeakMap<CallContext, number>();

/** About four characters a token, the usual rule of thumb for English text. */
const estimateTokens = (texts: string[]) => texts.reduce((sum, text) => sum + Math.ceil(text.length / 4), 0);

/** The texts to embed; token arrays (which Gemini cannot take) are sent as their JSON text, with a warning. */
function embeddingTexts(input: EmbeddingsRequest["input"], warnings: string[]): string[] {
  if (typeof input === "string") return [input];
  const items = input.every((item) => typeof item === "number") ? [input] : input;
  if (items.some((item) => typeof item !== "string")) warnings.push("Gemini embeds only text; token arrays were sent as text");
  return items.map((item) => (typeof item === "string" ? item : JSON.stringify(item)));
}

export function geminiEmbeddingsRequest(body: EmbeddingsRequest, context: CallContext): TranslatedRequest {
  const warnings: string[] = [];
  const texts = embeddingTexts(body.input, warnings);
  if (body.encoding_format === "base64") warnings.push('Gemini does not support encoding_format "base64"; floats are returned');
  estimates.set(context, estimateTokens(texts));
  const model = modelPath(context.model);
  const requests = texts.map((text) => ({
    model,
    content: { parts: [{ text }] },
    ...(body.dimensions ? { outputDimensionality: body.dimensions } : {}),
  }));
  return {
    request: {
      method: "POST",
      url: geminiUrl(context, "batchEmbedContents"),
      headers: geminiHeaders(context),
      body: JSON.stringify({ requests }),
    },
    warnings,
  };
}

/**
 * `{embeddings: [{values}]}` as OpenAI's list; usage from the upstream if it says, else estimated.
 * Refused without its vectors.
 */
export function geminiEmbeddingsResponse(raw: unknown, context: CallContext): EmbeddingsResponse {
  const body = asRecord(raw);
  const vectors = (item: unknown) => Array.isArray(asRecord(item).values);
  if (!Array.isArray(body.embeddings) || !body.embeddings.every(vectors)) throw new Error("not an embeddings answer: no list of vectors");
  const embeddings: unknown[] = body.embeddings;
  const reported = asNumber(asRecord(body.usageMetadata).promptTokenCount);
  const tokens = reported ?? estimates.get(context) ?? 0;
  return {
    object: "list",
    data: embeddings.map((item, index) => {
      const values = asRecord(item).values;
      return { object: "embedding", index, embedding: Array.isArray(values) ? (values as number[]) : [] };
    }),
    model: context.model,
    usage: { prompt_tokens: tokens, total_tokens: tokens },
  };
}
