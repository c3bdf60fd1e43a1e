import type { ChatChunk, ChatCompletion } from "../../chat-types.ts";
import { compatibleResponse } from "../openai-compatible/create.ts";
import { AZURE_BODY_EXTRAS, AZURE_CHOICE_EXTRAS } from "./api-types.ts";
import { mapAzureFinishReason } from "./finish-reason.ts";

function without<T extends object>(value: T, keys: readonly string[]): T {
  const copy = { ...value } as Record<string, unknown>;
  for (const key of keys) delete copy[key];
  return copy as T;
}

/** Drops Azure's content-filter annotations, leaving the OpenAI shape. */
export function stripAzureExtras<T extends ChatCompletion | ChatChunk>(body: T): T {
  const choices = body.choices.map((choice) => ({
    ...without(choice, AZURE_CHOICE_EXTRAS),
    finish_reason: mapAzureFinishReason(choice.finish_reason),
  }));
  return { ...without(body, AZURE_BODY_EXTRAS), choices } as T;
}

export function azureResponse(raw: unknown): ChatCompletion {
  const completion = compatibleResponse(raw);
  return stripAzureExtras({ ...completion, choices: completion.choices ?? [] });
}
